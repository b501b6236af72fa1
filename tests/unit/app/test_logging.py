"""After start-up the root logger builds no record its handlers would drop."""

from __future__ import annotations

import logging

from faust.utils.terminal import Spinner, SpinnerHandler

from app.startup import restore_root_log_level


def test_the_spinners_debug_level_and_handler_go_after_start_up() -> None:
    root = logging.Logger("probe-root")
    printing = logging.StreamHandler()
    printing.setLevel(logging.WARNING)
    root.addHandler(printing)
    root.addHandler(SpinnerHandler(Spinner(), level=logging.DEBUG))  # what Faust's worker adds at WARN and above
    root.setLevel(logging.DEBUG)
    assert root.isEnabledFor(logging.DEBUG)
    restore_root_log_level(root)
    assert root.handlers == [printing]
    assert root.level == logging.WARNING
    assert not root.isEnabledFor(logging.INFO)


def test_a_root_logger_at_info_stays_at_info() -> None:
    root = logging.Logger("probe-root", level=logging.INFO)
    handler = logging.StreamHandler()  # level NOTSET: prints whatever reaches it
    root.addHandler(handler)
    restore_root_log_level(root)
    assert root.level == logging.INFO
    assert root.handlers == [handler]
