"""The topics read to the high watermarks they had when verify started: assigned partitions, no group, no commits.

One confluent-kafka consumer reads one topic at a time from each partition's low watermark to the high watermark of
the snapshot, so records written later are left out and every record written before is seen once: an extra or a
duplicate record shows. Progress goes to stderr about once a second.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient

from app.clients import kafka_config, registry_config
from app.decoding import RecordDecoder, RegistryUnavailable, UndecodableRecord
from app.exceptions import DatagenError
from app.settings import Settings
from app.verify.observe import Decode, Record

#: Records asked for per poll, and how long a poll waits.
BATCH = 10_000
POLL_SECONDS = 0.5
#: How often progress is printed.
PROGRESS_SECONDS = 1.0

#: Partition -> (low watermark, high watermark).
Ends = dict[int, tuple[int, int]]


class VerifyError(DatagenError):
    """What verify needs cannot be read (Kafka, the registry or Postgres does not answer in time)."""


@dataclass(frozen=True)
class Snapshot:
    """Each topic's watermarks when verify started; topics that do not exist have none."""

    ends: dict[str, Ends]
    missing: list[str]

    def total(self, topic: str) -> int:
        return sum(high - low for low, high in self.ends.get(topic, {}).values())


class Progress:
    """Prints how far each topic has been read, at most once per PROGRESS_SECONDS."""

    def __init__(self, err: IO[str], clock: Callable[[], float] = time.monotonic) -> None:
        self._err = err
        self._clock = clock
        self._last = clock()

    def tick(self, topic: str, read: int, total: int, *, done: bool = False) -> None:
        now = self._clock()
        if done or now - self._last >= PROGRESS_SECONDS:
            self._last = now
            state = "read" if done else "reading"
            print(f"verify: {state} {topic}: {read:,} of {total:,} records", file=self._err, flush=True)


def consumer_for(settings: Settings) -> Consumer:
    """A consumer that only reads assigned partitions: it joins no group and commits nothing."""
    return Consumer(
        kafka_config(
            settings,
            **{
                "group.id": f"{settings.app_id}-verify-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
            },
        )
    )


def take_snapshot(consumer: Consumer, topics: Iterable[str], timeout: float) -> Snapshot:
    """The watermarks of every partition of ``topics``, in the order given."""
    ends: dict[str, Ends] = {}
    missing = []
    for topic in topics:
        found = watermarks(consumer, topic, timeout)
        if found is None:
            missing.append(topic)
        else:
            ends[topic] = found
    return Snapshot(ends, missing)


def watermarks(consumer: Consumer, topic: str, timeout: float) -> Ends | None:
    """(low, high) of each partition of ``topic``; None when the topic does not exist."""
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        if metadata.error is not None:
            if metadata.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                return None
            raise KafkaException(metadata.error)
        return {
            partition: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
            for partition in sorted(metadata.partitions)
        }
    except KafkaException as error:
        msg = f"Kafka did not give the watermarks of {topic} within {timeout:g} s: {error}"
        raise VerifyError(msg) from error


def read_topic(
    consumer: Consumer,
    topic: str,
    ends: Ends,
    take: Callable[[Record], None],
    progress: Progress,
    deadline: float,
) -> int:
    """Hand every record of ``topic`` below the snapshot's high watermarks to ``take``, in each partition's order."""
    todo = {partition: high for partition, (low, high) in ends.items() if high > low}
    total = sum(high - low for low, high in ends.values())
    read = 0
    if todo:
        consumer.assign([TopicPartition(topic, partition, ends[partition][0]) for partition in todo])
    try:
        while todo:
            if time.monotonic() > deadline:
                msg = f"{topic}: {read:,} of {total:,} records read before the timeout; partitions left: {sorted(todo)}"
                raise VerifyError(msg)
            for message in consumer.consume(num_messages=BATCH, timeout=POLL_SECONDS):
                read += _take(message, topic, todo, take)
            progress.tick(topic, read, total)
    finally:
        if ends:
            consumer.unassign()
    progress.tick(topic, read, total, done=True)
    return read


def _take(message: Any, topic: str, todo: dict[int, int], take: Callable[[Record], None]) -> int:
    """1 if ``message`` was below its partition's end and handed to ``take``; finishes partitions at their end."""
    partition, offset = message.partition(), message.offset()
    error = message.error()
    if error is not None:
        if error.code() == KafkaError._PARTITION_EOF:
            if partition in todo and offset >= todo[partition]:
                del todo[partition]
            return 0
        msg = f"{topic} partition {partition}: {error.str()}"
        raise VerifyError(msg)
    end = todo.get(partition)
    if end is None or offset >= end:
        return 0
    take(
        Record(
            topic,
            partition,
            offset,
            message.key(),
            message.value(),
            message.timestamp()[1],
            dict(message.headers() or ()),
        )
    )
    if offset >= end - 1:
        del todo[partition]
    return 1


def decoder_for(settings: Settings, deadline: float) -> Decode:
    """The agents' own decoding (compiled readers, AvroDeserializer first), waiting while the registry is away."""
    decoder = RecordDecoder(SchemaRegistryClient(registry_config(settings)))

    def decode(topic: str, raw: bytes | None) -> tuple[Mapping[str, Any] | None, str]:
        while True:
            try:
                return decoder.decode(topic, raw), ""
            except UndecodableRecord as error:
                return None, str(error)
            except RegistryUnavailable as error:
                if time.monotonic() > deadline:
                    msg = f"the schema registry did not answer before the timeout ({error})"
                    raise VerifyError(msg) from error
                time.sleep(1.0)

    return decode
