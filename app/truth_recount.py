"""Counting what the generation shards emitted and the agents derived by reading Kafka: the consumer's side of
the truth topic.

A shard's next owner counts the minutes a worker killed with SIGKILL left unpublished (``recount`` of one shard
from the moment its truth was last published), and ``faust -A app verify`` recounts everything to compare with the
truth topic. Each topic is read to the high watermarks it had when the count began.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, Message, TopicPartition

from app.truth import Decode, MinuteCounts, classify, header, minute_of
from app.wire.headers import DUPLICATE_HEADER, SHARD_HEADER, SOURCE_HEADER

log = logging.getLogger(__name__)

#: How long a metadata, offset or watermark request may take, in seconds.
REQUEST_SECONDS = 10.0
#: Records asked for per consume call.
BATCH = 5_000
#: The longest a count may take, in seconds: a partition that does not answer fails it instead of stalling it.
DEADLINE_SECONDS = 300.0


def recount(
    connection: Mapping[str, Any],
    topics: Mapping[str, str],
    decode: Decode,
    *,
    since_ms: int = 0,
    shards: Mapping[int, int] | None = None,
    progress: Callable[[int], None] | None = None,
    deadline_seconds: float = DEADLINE_SECONDS,
) -> dict[tuple[int, int], MinuteCounts]:
    """Per (shard, minute), the records of ``topics`` (topic name -> event kind) that carry a shard header, with
    record timestamps from ``since_ms`` on, read up to the high watermarks as they are now. With ``shards`` (shard
    -> from when), only those shards' records, each from its own moment on. ``progress(records read)`` is called
    now and then. TimeoutError when the topics are not read to those watermarks within ``deadline_seconds``."""
    if shards is not None:
        if not shards:
            return {}
        since_ms = min(shards.values())
    wanted = None if shards is None else {str(shard): moment for shard, moment in shards.items()}
    found: dict[tuple[int, int], MinuteCounts] = {}

    def visit(message: Message, timestamp: int) -> None:
        headers = message.headers()
        made_by = header(headers, SHARD_HEADER)
        if made_by is None or timestamp < (since_ms if wanted is None else wanted.get(made_by, -1)):
            return
        if wanted is not None and made_by not in wanted:
            return
        topic = str(message.topic())
        key = (int(made_by), minute_of(timestamp))
        counts = found.get(key)
        if counts is None:
            counts = found[key] = MinuteCounts()
        if header(headers, DUPLICATE_HEADER) is not None:
            counts.add_duplicate(topic)
            return
        kind = topics[topic]
        value, late, bad_kind = classify(topic, kind, headers, message.value(), timestamp, decode)
        counts.add(topic, kind, value, late, bad_kind)

    _read(connection, list(topics), since_ms, visit, progress, deadline_seconds)
    return found


def recount_derived(
    connection: Mapping[str, Any],
    topics: Mapping[str, str],
    decode: Decode,
    *,
    since_ms: int = 0,
    incarnations: Mapping[str, int] | None = None,
    progress: Callable[[int], None] | None = None,
    deadline_seconds: float = DEADLINE_SECONDS,
) -> dict[tuple[str, int], MinuteCounts]:
    """Per (source, minute), the records of ``topics`` (topic name -> role: payments, shipments,
    inventory_changes) that carry a source header (``<agent>:<incarnation>``), with record timestamps from
    ``since_ms`` on, read up to the high watermarks as they are now. With ``incarnations`` (incarnation -> from
    when), only the records those worker processes sent, each from its own moment on."""
    if incarnations is not None:
        if not incarnations:
            return {}
        since_ms = min(incarnations.values())
    found: dict[tuple[str, int], MinuteCounts] = {}

    def visit(message: Message, timestamp: int) -> None:
        source = header(message.headers(), SOURCE_HEADER)
        if source is None:
            return
        if incarnations is not None:
            incarnation = source.rpartition(":")[2]
            if incarnation not in incarnations or timestamp < incarnations[incarnation]:
                return
        elif timestamp < since_ms:
            return
        topic = str(message.topic())
        role = topics[topic]
        key = (source, minute_of(timestamp))
        counts = found.get(key)
        if counts is None:
            counts = found[key] = MinuteCounts()
        counts.add_derived(topic, role, decode(role, message.value() or b""))

    _read(connection, list(topics), since_ms, visit, progress, deadline_seconds)
    return found


def _read(
    connection: Mapping[str, Any],
    topics: list[str],
    since_ms: int,
    visit: Callable[[Message, int], None],
    progress: Callable[[int], None] | None,
    deadline_seconds: float,
) -> None:
    """``visit(message, record timestamp)`` for each record of ``topics`` from its first at ``since_ms`` or later
    up to the high watermarks as they are now; TimeoutError past ``deadline_seconds``."""
    deadline = time.monotonic() + deadline_seconds
    consumer = Consumer(
        {
            **connection,
            "group.id": f"retail-datagen-recount-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "logger": logging.getLogger("librdkafka"),
        }
    )
    try:
        starts, ends = _ranges(consumer, topics, since_ms)
        if not starts:
            return
        consumer.assign(starts)
        left = {(tp.topic, tp.partition): ends[(tp.topic, tp.partition)] for tp in starts}
        read = 0
        while left:
            if time.monotonic() > deadline:
                msg = f"not read to their ends within {deadline_seconds:.0f} s: {sorted(left)[:3]}"
                raise TimeoutError(msg)
            messages = consumer.consume(BATCH, timeout=1.0)
            for message in messages:
                if message.error() is not None:
                    log.warning("recount: %s", message.error())
                    continue
                topic, partition = str(message.topic()), int(message.partition() or 0)
                offset = int(message.offset() or 0)
                end = left.get((topic, partition))
                if end is None or offset >= end:
                    continue
                if offset + 1 >= end:
                    del left[(topic, partition)]
                read += 1
                visit(message, message.timestamp()[1])
            if progress is not None:
                progress(read)
    finally:
        consumer.close()


def _ranges(
    consumer: Consumer, topics: list[str], since_ms: int
) -> tuple[list[TopicPartition], dict[tuple[str, int], int]]:
    """Where to start reading each partition (its first record at ``since_ms`` or later) and its high watermark;
    partitions with nothing to read are left out."""
    metadata = consumer.list_topics(timeout=REQUEST_SECONDS)
    wanted = [
        TopicPartition(topic, partition, since_ms)
        for topic in topics
        if topic in metadata.topics
        for partition in sorted(metadata.topics[topic].partitions)
    ]
    if not wanted:
        return [], {}
    starts = consumer.offsets_for_times(wanted, timeout=REQUEST_SECONDS)
    chosen: list[TopicPartition] = []
    ends: dict[tuple[str, int], int] = {}
    for tp in starts:
        _, high = consumer.get_watermark_offsets(tp, timeout=REQUEST_SECONDS, cached=False)
        if tp.offset in (OFFSET_END, -1) or tp.offset >= high:
            continue
        chosen.append(TopicPartition(tp.topic, tp.partition, tp.offset))
        ends[(tp.topic, tp.partition)] = high
    return chosen, ends
