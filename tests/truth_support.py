"""Helpers of the truth tests on the real stack: every record of a topic read to its high watermarks, the truth
topic's latest record per key, and a downstream consumer's count of the topics in the truth record's terms.

The counting is a downstream user's: confluent-kafka's consumer and AvroDeserializer, records grouped by their
x-datagen-shard or x-datagen-source header and the minute of their record timestamp.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.serialization import MessageField, SerializationContext

from app.wire.headers import BAD_RECORD_HEADER, DUPLICATE_HEADER, SHARD_HEADER, SOURCE_HEADER
from tests.support import KAFKA_BOOTSTRAP, registry_client, topic_deserializer

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
