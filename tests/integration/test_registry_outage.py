"""A registry that goes away once a worker has started stops nothing that writes: every codec writes with the schema
ids registered at start-up, so the truth of the first minute, the first record of its kind, goes out while the
registry is down, and the worker goes on generating (make faults found a worker that crashed on that record)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.truth import GENERATOR
from faults.harness import stack
from tests.support import http_get, run_worker, unique_topics, wait_for
from tests.truth_support import MINUTE, latest_truth

pytestmark = pytest.mark.integration

SMALL = {"N_USERS": "300", "N_PRODUCTS": "200", "N_WAREHOUSES": "2", "N_SUPPLIERS": "8"}


def emitted(url: str) -> int:
    status, stats = http_get(url + "/stats/?local")
    assert status == 200, stats
    return int(stats["emitted"])


def test_the_first_minute_s_truth_goes_out_while_the_registry_is_down(
    tmp_path: Path, pg_database_factory: Callable[[], str]
) -> None:
    topics = unique_topics("registryout")
    settings = {**topics, **SMALL, "PG_DSN": pg_database_factory(), "TARGET_EPS": "50", "DIURNAL_ENABLED": "false"}
    with run_worker(tmp_path, settings) as worker:
        worker.wait_until_logged("held here; started", timeout=120)
        first_minute = int(time.time() * 1000) // MINUTE * MINUTE
        stack("stop", "registry")
        try:
            # Past the first minute's end, by more than the generator's wait for its deliveries there.
            time.sleep(max(0.0, (first_minute + MINUTE) / 1000 + 10 - time.time()))
            assert worker.process.poll() is None, worker.log()[-4000:]
            before = emitted(worker.url)
            wait_for(lambda: emitted(worker.url) > before, "generation to go on while the registry is down", 30)
        finally:
            stack("up")

        def published() -> bool:
            found = latest_truth(topics["TOPIC_TRUTH"])  # read once the registry is back: it decodes
            return any(key[1] == first_minute and truth["source"] == GENERATOR for key, truth in found.items())

        wait_for(published, "the truth of the first minute", timeout=60)
        assert worker.process.poll() is None, worker.log()[-4000:]
