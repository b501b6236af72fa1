"""Reading what the truth topic says, and counting the same from the topics (``app.truth_recount``): the
generated topics per shard, the derived ones per agent source."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from app.clients import kafka_config, registry_config
from app.decoding import RecordDecoder
from app.settings import Settings
from app.truth import GENERATOR, MinuteCounts
from app.truth_recount import recount, recount_derived
from app.verify.reader import VerifyError
from app.wire.roles import CUSTOMER_INTERACTIONS, DERIVED, INVENTORY_CHANGES, ORDERS, TRUTH, requests_topic

#: Who emitted a truth record's records: a generation shard (its number, as text) or an agent's source
#: (``<agent>:<incarnation>``); and the minute (epoch ms).
Key = tuple[str, int]
#: (who, minute) -> (its counts, complete)
Told = dict[Key, tuple[MinuteCounts, bool]]


def generated_topics(settings: Settings) -> dict[str, str]:
    """The topics the generator writes (topic name -> event kind): with the agents on, its background changes are
    requests on ``<APP_ID>-stock-requests``."""
    topics = settings.topics()
    changes = requests_topic(settings.app_id) if settings.agents_enabled else topics[INVENTORY_CHANGES]
    return {
        topics[ORDERS]: ORDERS,
        topics[CUSTOMER_INTERACTIONS]: CUSTOMER_INTERACTIONS,
        changes: INVENTORY_CHANGES,
    }


def read_truth(settings: Settings, timeout: float, progress: Callable[[int], None] | None = None) -> Told:
    """The truth topic's latest record of each key, read to its high watermarks: the one with the latest record
    timestamp (publication time), of those the one at the highest offset."""
    topic = settings.topics()[TRUTH]
    decoder = RecordDecoder(SchemaRegistryClient(registry_config(settings)))
    consumer = Consumer(
        kafka_config(
            settings, **{"group.id": f"{settings.app_id}-verify-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )
    )
    found: dict[Key, tuple[tuple[int, int], MinuteCounts, bool]] = {}
    deadline = time.monotonic() + timeout
    try:
        metadata = consumer.list_topics(timeout=timeout)
        if topic not in metadata.topics:
            return {}
        read = 0
        for partition in sorted(metadata.topics[topic].partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            offset = low
            while offset < high:
                if time.monotonic() > deadline:
                    msg = f"{topic}[{partition}] not read to its end before the timeout"
                    raise VerifyError(msg)
                for message in consumer.consume(1_000, timeout=1.0):
                    if message.error() is not None or (message.offset() or 0) >= high:
                        continue
                    offset = int(message.offset() or 0) + 1
                    value: Mapping[str, Any] = decoder.decode(topic, message.value())
                    minute = value["minute"]
                    minute_ms = int(minute.timestamp() * 1000) if hasattr(minute, "timestamp") else int(minute)
                    source = str(value.get("source") or GENERATOR)
                    key = (str(value["shard"]) if source == GENERATOR else source, minute_ms)
                    order = (int(message.timestamp()[1]), offset)
                    if key not in found or found[key][0] < order:
                        found[key] = (order, MinuteCounts.from_value(value), bool(value["complete"]))
                    read += 1
                if progress is not None:
                    progress(read)
    finally:
        consumer.close()
    return {key: (counts, complete) for key, (_, counts, complete) in found.items()}


def count_generated(settings: Settings, progress: Callable[[int], None] | None = None) -> dict[Key, MinuteCounts]:
    """Per (shard, minute), the generated topics' records counted as the truth counts them, and with the agents on,
    per (source, minute), the derived topics' records; each topic read to its end."""
    topics = settings.topics()
    decoder = RecordDecoder(SchemaRegistryClient(registry_config(settings)))

    def decode(role: str, raw: bytes) -> Mapping[str, Any]:
        return decoder.decode(topics[role], raw)

    connection = kafka_config(settings)
    shards = recount(connection, generated_topics(settings), decode, progress=progress)
    counted: dict[Key, MinuteCounts] = {(str(shard), minute): counts for (shard, minute), counts in shards.items()}
    if settings.agents_enabled:
        derived = {topics[role]: role for role in DERIVED}
        counted.update(recount_derived(connection, derived, decode, progress=progress))
    return counted
