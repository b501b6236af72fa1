"""The truth topic against the real stack: what it says of each (shard, minute) and each (agent source, minute)
is what a consumer counts on the topics, including the minutes a worker killed with SIGKILL left open (its
shards' and its agents') and the one a worker stopping gracefully leaves half done.

The counting here is a downstream user's: confluent-kafka's consumer and AvroDeserializer, every topic read to
its high watermarks, records grouped by their x-datagen-shard or x-datagen-source header and the minute of their
record timestamp.
"""

from __future__ import annotations

import random
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.wire.roles import requests_topic
from db.throwaway import create_database, drop_database, dsn_for
from tests.support import PG_DSN, run_worker, unique_topics, wait_for
from tests.truth_support import MINUTE, as_truth, count_derived, count_topics, latest_truth

pytestmark = pytest.mark.integration

SMALL = {"N_USERS": "300", "N_PRODUCTS": "200", "N_WAREHOUSES": "2", "N_SUPPLIERS": "8"}
SHARDS = 3


@pytest.fixture
def database() -> Iterator[str]:
    """A database of its own: the stock agent's ledger (postgres mode) is one per APP_ID."""
    name = create_database(PG_DSN, "truthtest")
    try:
        yield dsn_for(PG_DSN, name)
    finally:
        drop_database(PG_DSN, name)


def test_truth_equals_a_recount_across_sigkill_and_graceful_stop(tmp_path: Path, database: str) -> None:
    topics = unique_topics("truth")
    settings = {
        **topics,
        **SMALL,
        "PG_DSN": database,
        "TARGET_EPS": "300",
        "DIURNAL_ENABLED": "false",
        "GENERATION_SHARDS": str(SHARDS),
        "P_BAD_RECORD": "0.03",
        "P_LATE_EVENT": "0.05",
        "P_DUPLICATE": "0.02",
        "BROKER_SESSION_TIMEOUT": "8",
    }
    truth_topic = topics["TOPIC_TRUTH"]
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    with run_worker(tmp_path / "first", settings) as first:
        first.wait_until("/stats/", 200, timeout=120)
        first.wait_until_logged("held here; started", timeout=120)
        time.sleep(random.Random(uuid.uuid4().int).uniform(5, 45))  # a random moment of its first minute or two
        killed_ms = int(time.time() * 1000)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
    killed_minute = killed_ms - killed_ms % MINUTE
    with run_worker(tmp_path / "second", settings) as second:
        second.wait_until_logged("truth: counted from Kafka", timeout=150)

        def killed_minute_published() -> bool:
            truth = latest_truth(truth_topic)
            return all(truth.get((str(shard), killed_minute), {}).get("complete") for shard in range(SHARDS))

        wait_for(killed_minute_published, "the truth of the minute the kill left open", timeout=150)
        # The killed process's agents: silent for 30 s, then counted from Kafka by this one.
        second.wait_until_logged("left unpublished", timeout=120)
    # The second worker stopped gracefully: its last minute is published as far as it went.
    truth = latest_truth(truth_topic)
    generated = {
        topics["TOPIC_ORDERS"]: topics["TOPIC_ORDERS"],
        topics["TOPIC_CUSTOMER_INTERACTIONS"]: topics["TOPIC_CUSTOMER_INTERACTIONS"],
        requests_topic(topics["APP_ID"]): topics["TOPIC_INVENTORY_CHANGES"],
    }
    counted = count_topics(generated)
    derived = count_derived([topics["TOPIC_PAYMENTS"], topics["TOPIC_SHIPMENTS"], topics["TOPIC_INVENTORY_CHANGES"]])
    counted.update(derived)
    assert set(truth) == set(counted), (sorted(set(truth) ^ set(counted)), sorted(truth))
    differing = {key: (as_truth(truth[key]), counted[key]) for key in truth if as_truth(truth[key]) != counted[key]}
    assert not differing, differing
    assert {key[0] for key in truth if ":" not in key[0]} == {str(shard) for shard in range(SHARDS)}
    # Both processes' agents derived records (the killed one's published by the other), each counted exactly.
    sources = {key[0] for key in derived}
    assert {source.split(":")[0] for source in sources} == {"orders", "stock"}
    assert len({source.split(":")[1] for source in sources}) == 2, sorted(sources)
    assert sum(entry["units_shipped"] for entry in derived.values()) > 0
    assert any(not value["complete"] for value in truth.values()), "the graceful stop published no open minute"
    assert sum(sum(entry["bad_records"].values()) for entry in counted.values()) > 0
    assert sum(sum(entry["late_events"].values()) for entry in counted.values()) > 0
    assert sum(entry["duplicates"] for entry in counted.values()) > 0
