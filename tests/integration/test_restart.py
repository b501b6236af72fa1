"""A worker stopped and restarted: the table recovers from its changelog (or its RocksDB), Postgres-canonical stock
is left alone, and a graceful stop (SIGTERM) leaves the mirror equal to the table."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.inventory import fold
from db.throwaway import create_database, drop_database, dsn_for
from tests.stock_support import (
    changelog_on_hand,
    changelog_states,
    differences,
    high_watermarks,
    listed_on_hand,
    listing,
    postgres_on_hand,
    postgres_stock,
    quiet,
    totals_disagreeing,
)
from tests.support import PG_DSN, Worker, foldable_changes, http_get, read_back, run_worker, unique_topics

pytestmark = pytest.mark.integration

OPENED = "inventory opened from the seeded stock"
STARTED = "generating with RANDOM_SEED="
#: A restarted worker generates nothing: a flat rate so low that its token bucket (starting empty) never fills.
IDLE = {"TARGET_EPS": "0.000001", "DIURNAL_ENABLED": "false"}


def _settings(tag: str, dsn: str, mode: str) -> dict[str, str]:
    return {
        **unique_topics(tag),
        "PG_DSN": dsn,
        "N_USERS": "300",
        "N_PRODUCTS": "60",
        "N_WAREHOUSES": "3",
        "N_SUPPLIERS": "8",
        "RANDOM_SEED": "41",
        "CANON_INVENTORY": mode,
        "TARGET_EPS": "500",
        "MAX_EVENTS": "3000",
        "P_BAD_RECORD": "0.01",
        "LEAD_TIME_SCALE": str(1 / 864_000),  # a business day lasts 0.1 s: restocks and returns arrive quickly
    }


def _stop(worker: Worker, timeout: float = 90.0) -> float:
    """SIGTERM and wait for the exit; the seconds it took. Fails if the worker had to be killed or failed."""
    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    worker.process.wait(timeout=timeout)
    assert worker.process.returncode == 0, worker.log()[-4000:]
    return time.monotonic() - started


def _ready(worker: Worker) -> None:
    """Wait until the restarted worker serves the table (Faust starts the web server after recovery) and its
    agents have started."""
    worker.wait_until("/inventory/", 200, timeout=180)
    worker.wait_until_logged(STARTED, timeout=120)


def _fold_on_hand(topic: str) -> dict[tuple[int, int], int]:
    states = fold(foldable_changes(read_back([topic], sum(high_watermarks(topic).values()), timeout=60)))
    return {(s.product_id, w): stock.on_hand for s in states.values() for w, stock in s.warehouses.items()}


# ----- kafka mode: the table comes back


@dataclass
class Stopped:
    """A kafka-mode worker run until quiet and stopped: what it served, where it kept it."""

    settings: dict[str, str]
    data_dir: Path
    listing: list[dict]
    stop_seconds: float


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stopped]:
    name = create_database(PG_DSN, "restartk")
    settings = _settings("restartk", dsn_for(PG_DSN, name), "kafka")
    first = tmp_path_factory.mktemp("first")
    try:
        with run_worker(first, settings) as worker:
            worker.wait_until_logged("MAX_EVENTS=", timeout=180)
            _, items = quiet(worker)
            seconds = _stop(worker)
        yield Stopped(settings, first / "faust-data", items, seconds)
    finally:
        drop_database(PG_DSN, name)


def _assert_recovered(worker: Worker, before: Stopped) -> None:
    _ready(worker)
    after = listing(worker)
    assert OPENED not in worker.log()  # the changes topic was not empty: no second set of opening balances
    mismatched = [(old, new) for old, new in zip(before.listing, after, strict=False) if old != new]
    assert len(after) == len(before.listing)
    assert mismatched == [], mismatched[:3]
    time.sleep(5)
    assert listing(worker) == after, "the restarted worker changed the table: it was not quiet"


def test_the_table_recovers_from_the_changelog_into_an_empty_data_dir(stopped: Stopped, tmp_path: Path) -> None:
    assert not (tmp_path / "faust-data").exists()
    with run_worker(tmp_path, {**stopped.settings, **IDLE}) as worker:
        _assert_recovered(worker, stopped)
        _stop(worker)


def test_the_table_reopens_from_the_same_data_dir(stopped: Stopped, tmp_path: Path) -> None:
    assert stopped.data_dir.is_dir()
    with run_worker(tmp_path, {**stopped.settings, **IDLE, "DATA_DIR": str(stopped.data_dir)}) as worker:
        _assert_recovered(worker, stopped)
        _stop(worker)


def test_the_recovered_table_is_the_changelog_and_the_fold_of_the_topic(stopped: Stopped) -> None:
    table = listed_on_hand(stopped.listing)
    changelog = changelog_states(stopped.settings["APP_ID"])
    assert differences(table, changelog_on_hand(changelog)) == {}
    folded = _fold_on_hand(stopped.settings["TOPIC_INVENTORY_CHANGES"])
    assert differences(table, folded) == {}


# ----- postgres mode: nothing is sent or changed again


def test_a_postgres_mode_restart_sends_no_opening_balances_and_changes_no_stock(tmp_path: Path) -> None:
    name = create_database(PG_DSN, "restartp")
    dsn = dsn_for(PG_DSN, name)
    settings = _settings("restartp", dsn, "postgres")
    changes = settings["TOPIC_INVENTORY_CHANGES"]
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    try:
        with run_worker(tmp_path / "first", settings) as worker:
            worker.wait_until_logged("MAX_EVENTS=", timeout=180)
            _, items = quiet(worker)
            assert OPENED in worker.log()
            _stop(worker)
        stock, topic = postgres_stock(dsn), high_watermarks(changes)
        with run_worker(tmp_path / "second", {**settings, **IDLE}) as worker:
            _ready(worker)
            time.sleep(5)
            assert listing(worker) == items
            assert OPENED not in worker.log()
            assert high_watermarks(changes) == topic  # not one change more: no opening balances sent again
            assert postgres_stock(dsn) == stock  # quantities and update times
            _stop(worker)
    finally:
        drop_database(PG_DSN, name)


# ----- a graceful stop flushes the mirror


def test_a_sigterm_while_busy_leaves_the_mirror_equal_to_the_recovered_table(tmp_path: Path) -> None:
    """Stopped while generating and fulfilling: the mirror's last write comes after the agents' last fold, so
    Postgres holds what a worker recovering the table from its changelog would hold."""
    name = create_database(PG_DSN, "flush")
    dsn = dsn_for(PG_DSN, name)
    settings = {**_settings("flush", dsn, "kafka"), "MIRROR_INVENTORY_TO_DB": "true", "TARGET_EPS": "1000"}
    settings.pop("MAX_EVENTS")
    settings["N_PRODUCTS"] = "30"  # many changes per product: a lost last write shows
    try:
        with run_worker(tmp_path, settings) as worker:
            worker.wait_until_logged(STARTED, timeout=180)
            deadline = time.monotonic() + 120
            while http_get(worker.url + "/stats/")[1]["emitted"] < 8000:
                assert time.monotonic() < deadline, "the worker never got going"
                time.sleep(0.5)
            _, stats = http_get(worker.url + "/stats/")
            assert stats["agents"].get("shipped", 0) > 0
            _stop(worker)
            assert "inventory mirror flushed at shutdown" in worker.log()
            assert "changed products not found in the table" not in worker.log()
        mirror = postgres_on_hand(dsn)
        recovered = changelog_on_hand(changelog_states(settings["APP_ID"]))
        # Rows the table never held (seeded at zero, never stocked) are not in the changelog; they stay 0.
        assert differences(recovered, mirror, default=0) == {}
        assert totals_disagreeing(dsn) == []
    finally:
        drop_database(PG_DSN, name)
