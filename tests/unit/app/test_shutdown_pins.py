"""``app.shutdown`` bounds a stop by replacing, on the instances, methods Faust's stop calls by name: these tests
fail when faust-streaming's stop path changes, so that the bound is checked again."""

from __future__ import annotations

import hashlib
import inspect

import faust
import faust.app.base
import faust.transport.consumer
import faust.transport.drivers.aiokafka
import pytest

#: What the stop path runs, as in faust-streaming 0.15.3 (sha256 of the source).
PINNED = {
    faust.app.base.App._stop_consumer: "55854a5de12c3f5296b4acf16ddfe359be0b702d0cd7686bcab541847c396077",
    faust.transport.consumer.Consumer.wait_empty: "e4662fe24f094819add590b2d75f233840e77823b432aea6504539768572102f",
    faust.transport.consumer.Consumer.commit: "a354437baaa08bf8096d978ca195963e22f7a497d18392960dd53dacb7c9f2d8",
    faust.transport.drivers.aiokafka.Producer.flush: "36d0cb3615f65b01010d1ec8c5b0f6180110e24c486799bc47c0d72be5152270",
}


def test_faust_streaming_is_the_pinned_version() -> None:
    assert faust.__version__ == "0.15.3", "app.shutdown was checked against faust-streaming 0.15.3 only"


@pytest.mark.parametrize("function", list(PINNED), ids=lambda function: function.__qualname__)
def test_the_stop_path_app_shutdown_bounds_is_unchanged(function: object) -> None:
    digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()  # type: ignore[arg-type]
    assert digest == PINNED[function], (
        f"{function.__qualname__} changed: check that the stop still calls wait_empty, commit, stop and flush "  # type: ignore[attr-defined]
        "by name on the app's consumer and producer, then update app.shutdown.bound_kafka_waits and this pin"
    )
