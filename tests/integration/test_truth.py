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
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.serialization import MessageField, SerializationContext

from app.wire.headers import BAD_RECORD_HEADER, DUPLICATE_HEADER, SHARD_HEADER, SOURCE_HEADER
from app.wire.roles import requests_topic
from db.throwaway import create_database, drop_database, dsn_for
from tests.support import (
    KAFKA_BOOTSTRAP,
    PG_DSN,
    registry_client,
    run_worker,
    topic_deserializer,
    unique_topics,
    wait_for,
)

pytestmark = pytest.mark.integration

SMALL = {"N_USERS": "300", "N_PRODUCTS": "200", "N_WAREHOUSES": "2", "N_SUPPLIERS": "8"}
SHARDS = 3
MINUTE = 60_000

Key = tuple[str, int]  # (shard, or an agent's source <agent>:<incarnation>; minute)


def read_all(topic: str) -> list:
    """Every record of ``topic``, each partition read from its start to its high watermark."""
    consumer = Consumer(
        {"bootstrap.servers": KAFKA_BOOTSTRAP, "group.id": f"truth-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    records = []
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            got = 0
            deadline = time.monotonic() + 60
            while got < high - low:
                assert time.monotonic() < deadline, f"{topic}[{partition}]: read {got} of {high - low}"
                for message in consumer.consume(1000, timeout=1.0):
                    assert message.error() is None, message.error()
                    if message.offset() < high:
                        records.append(message)
                        got += 1
    finally:
        consumer.close()
    return records


def latest_truth(topic: str) -> dict[Key, dict]:
    """The truth topic's latest record per key, decoded."""
    deserializer = topic_deserializer(registry_client())
    found: dict[Key, tuple[tuple[int, int], dict]] = {}
    for message in read_all(topic):
        value = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
        who = str(value["shard"]) if value["source"] == "generator" else value["source"]
        key = (who, int(value["minute"].timestamp() * 1000))
        assert message.key().decode() == f"{key[0]}:{key[1]}"
        # Per key, the record published last wins (its timestamp; within a partition, its offset).
        order = (message.timestamp()[1], message.offset())
        if key not in found or order > found[key][0]:
            found[key] = (order, value)
    return {key: value for key, (_, value) in found.items()}


def empty() -> dict:
    return {
        "records": Counter(),
        "orders": 0,
        "units_ordered": 0,
        "revenue_cents": Counter(),
        "interactions": Counter(),
        "inventory_changes": Counter(),
        "late_events": Counter(),
        "bad_records": Counter(),
        "duplicates": 0,
        "payments": Counter(),
        "shipments": Counter(),
        "units_shipped": 0,
    }


def count_derived(derived: list[str]) -> dict[Key, dict]:
    """Per (source, minute), a consumer's count of the derived topics, in the truth record's terms."""
    deserializer = topic_deserializer(registry_client())
    counts: dict[Key, dict] = defaultdict(empty)
    for topic in derived:
        for message in read_all(topic):
            headers = dict(message.headers() or [])
            assert SOURCE_HEADER in headers, f"{topic}: a record without its source"
            timestamp = message.timestamp()[1]
            entry = counts[(headers[SOURCE_HEADER].decode(), timestamp - timestamp % MINUTE)]
            entry["records"][topic] += 1
            value = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
            if "carrier" in value:
                entry["shipments"][value["carrier"]] += 1
            elif "method" in value:
                entry["payments"][f"{value['status']}/{value['method']}"] += 1
            else:
                entry["inventory_changes"][value["change_type"]] += 1
                if value["change_type"] == "SALE":
                    entry["units_shipped"] -= value["delta"]
    return dict(counts)


def count_topics(generated: dict[str, str]) -> dict[Key, dict]:
    """Per (shard, minute), a consumer's count of the generated topics (topic -> the event topic whose subject its
    values use), in the truth record's terms."""
    deserializer = topic_deserializer(registry_client())
    counts: dict[Key, dict] = defaultdict(empty)
    for topic, subject_topic in generated.items():
        originals: set[tuple[bytes, bytes]] = set()
        copies: list[tuple[bytes, bytes]] = []
        for message in read_all(topic):
            headers = dict(message.headers() or [])
            if SHARD_HEADER not in headers:
                continue  # not the generator's (a forwarded order, an opening balance)
            timestamp = message.timestamp()[1]
            entry = counts[(headers[SHARD_HEADER].decode(), timestamp - timestamp % MINUTE)]
            entry["records"][topic] += 1
            if DUPLICATE_HEADER in headers:
                entry["duplicates"] += 1
                copies.append((message.key(), message.value()))
                continue
            originals.add((message.key(), message.value()))
            if BAD_RECORD_HEADER in headers:
                entry["bad_records"][headers[BAD_RECORD_HEADER].decode()] += 1
                continue
            value = deserializer(message.value(), SerializationContext(subject_topic, MessageField.VALUE))
            if value["event_time"].timestamp() * 1000 < timestamp:
                entry["late_events"][topic] += 1
            if "order_id" in value and "quantity" in value:
                entry["orders"] += 1
                entry["units_ordered"] += value["quantity"]
                entry["revenue_cents"][value["currency"]] += value["amount"]
            elif "interaction_type" in value:
                entry["interactions"][value["interaction_type"]] += 1
            else:
                entry["inventory_changes"][value["change_type"]] += 1
        # Every copy is byte for byte a record sent before it (same key, same value).
        assert not [copy for copy in copies if copy not in originals], f"{topic}: a copy of nothing sent"
    return dict(counts)


def as_truth(truth: dict) -> dict:
    """A truth record's counts in the consumer's terms (maps as Counters, zero entries left out)."""
    return {
        "records": Counter(truth["records"]),
        "orders": truth["orders"],
        "units_ordered": truth["units_ordered"],
        "revenue_cents": Counter(truth["revenue_cents"]),
        "interactions": Counter(truth["interactions"]),
        "inventory_changes": Counter(truth["inventory_changes"]),
        "late_events": Counter(truth["late_events"]),
        "bad_records": Counter(truth["bad_records"]),
        "duplicates": truth["duplicates"],
        "payments": Counter(truth["payments"]),
        "shipments": Counter(truth["shipments"]),
        "units_shipped": truth["units_shipped"],
    }


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
