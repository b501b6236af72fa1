"""The truth of what the agents derive: per source (agent and worker process) and minute, exact counts.

Every payment, shipment and inventory change an agent sends carries ``x-datagen-source: <agent>:<incarnation>``
(the incarnation names this worker process) and is counted here (``MinuteCounts.add_derived``). A minute is
published on the truth topic, keyed ``<source>:<minute ms>``, once it is over and the agents' producer has been
seen empty since (``settle``: each batch waits for that before it is acknowledged). Failed records are taken back
out; a minute with a record that timed out in flight is counted again from Kafka first. Dead letters and the
stock requests are not counted: a dead letter keeps the record timestamp of what it holds.

Since every source is one process, a source's minutes never move between workers. What a process left when it
died is published by another: each process writes once a second where its published truth ends
(``db.truth_marks``); a live worker claims a process silent for a while, counts its records from there on again
from Kafka (``app.truth_recount.recount_derived``), publishes them and marks it ended. A process stopping
gracefully sends nothing more, delivers what it holds, publishes every minute and marks itself ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, Message

from agents.truth_records import Failure, Pending, TruthRecords
from app.avro import AvroCodec
from app.producer import EventProducer
from app.truth import (
    MINUTE_MS,
    Decode,
    MinuteCounts,
    header,
    minute_of,
    source_key,
)
from app.truth_recount import recount_derived
from app.wire.headers import SOURCE_HEADER, Headers
from app.wire.roles import DERIVED, TRUTH
from db.truth_marks import TruthMarks

log = logging.getLogger(__name__)




def derived_topics(topics: Mapping[str, str]) -> dict[str, str]:
    """The topics the agents derive (topic name -> role)."""
    return {topics[role]: role for role in DERIVED}


class DerivedTruth:
    """This process's agents' counts per (source, minute) until each minute is published."""

    def __init__(
        self,
        app_id: str,
        codec: AvroCodec,
        topics: Mapping[str, str],
        decode: Decode,
        connection: Mapping[str, Any],
        *,
        incarnation: str | None = None,
        now_ms: int | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """``decode(role, raw)`` reads a record of a role; ``connection``: Kafka's, for counting again; ``clock``:
        the agents' time in epoch ms, which their records are stamped on (the wall clock by default)."""
        self._clock = clock or (lambda: int(time.time() * 1000))
        self.incarnation = incarnation or uuid.uuid4().hex[:12]
        self._app_id = app_id
        self._codec = codec
        self._topics = dict(topics)
        self._records = TruthRecords(topics[TRUTH])
        self._kinds = derived_topics(topics)
        self._decode = decode
        self._connection = dict(connection)
        self.minutes: dict[tuple[str, int], MinuteCounts] = {}
        #: Everything sent before this moment (epoch ms) is delivered or reported failed.
        self.settled_through = 0
        #: Nothing of this process before this moment is unpublished: no record of it comes before its start.
        self.closed_through = minute_of(self._clock() if now_ms is None else now_ms)
        self._failed: list[Message] = []
        self._timed_out: list[Message] = []
        #: (source, minute) with a record that timed out in flight: counted again from Kafka before publishing.
        self.uncertain: set[tuple[str, int]] = set()
        self._headers: dict[str, Headers] = {}

    def attach(self, producer: EventProducer) -> None:
        """Publish through ``producer`` (the agents'), whose failed deliveries come to ``report``."""
        self._records.attach(producer)

    def source(self, agent: str) -> str:
        """The source of ``agent``'s records in this process."""
        return f"{agent}:{self.incarnation}"

    def headers(self, agent: str) -> Headers:
        """The header every record ``agent`` derives here carries (one shared list)."""
        found = self._headers.get(agent)
        if found is None:
            found = self._headers[agent] = [(SOURCE_HEADER, self.source(agent).encode())]
        return found

    def count(self, agent: str, role: str, value: Mapping[str, Any], timestamp_ms: int) -> None:
        """Count one record ``agent`` hands to the producer with ``timestamp_ms``."""
        key = (self.source(agent), minute_of(timestamp_ms))
        counts = self.minutes.get(key)
        if counts is None:
            counts = self.minutes[key] = MinuteCounts()
        counts.add_derived(self._topics[role], role, value)

    def report(self, error: KafkaError, message: Message) -> None:
        """The producer's report of one record it could not deliver (called inside its poll)."""
        failure = self._records.sort_report(error, message)
        if failure is Failure.TRUTH or message.topic() not in self._kinds:
            return
        if header(message.headers(), SOURCE_HEADER) is None:
            return  # not an agent's record
        if failure is Failure.TIMED_OUT:
            self._timed_out.append(message)
        else:
            self._failed.append(message)

    def settle(self, now_ms: int) -> None:
        """The producer's queue was empty at ``now_ms``: what was handed to it before is delivered or reported."""
        self.settled_through = max(self.settled_through, now_ms)
        self._records.settle(now_ms)

    def unsettled(self, now_ms: int) -> bool:
        """True when a minute with counts, or a truth record, waits for the producer's queue to be seen empty."""
        return bool(self._records.pending) or any(
            self.settled_through < minute + MINUTE_MS <= now_ms for _, minute in self.minutes
        )

    def publish(self, now_ms: int, *, everything: bool = False) -> int:
        """Take back failed records, send again failed truth records, and publish every minute that is over and
        settled (``everything``: every minute, when nothing more will be sent); the truth records sent."""
        self._take_back_failures()
        self._records.resend(now_ms)
        published = 0
        settled = self.settled_through
        ready = sorted({minute for _, minute in self.minutes if everything or minute + MINUTE_MS <= settled})
        for minute in ready:
            if any(held[1] == minute for held in self.uncertain if held in self.minutes):
                break  # counted again from Kafka first (``resolve``); later minutes wait, in order
            for held in [held for held in self.minutes if held[1] == minute]:
                counts = self.minutes.pop(held)
                if counts.total:
                    self._send(held[0], minute, counts, now_ms)
                    published += 1
            self.closed_through = max(self.closed_through, minute + MINUTE_MS)
        return published

    def _send(self, source: str, minute: int, counts: MinuteCounts, now_ms: int, own: bool = True) -> str:
        key = source_key(source, minute)
        value = self._codec.encode(TRUTH, counts.value(self._app_id, -1, minute, True, source))
        self._records.send(key, Pending(source, minute, value, now_ms, own))
        return key

    def pending(self) -> list[str]:
        """The keys of the truth records not yet known to be in Kafka."""
        return list(self._records.pending)

    def delivered(self, keys: list[str]) -> bool:
        """True once every truth record of ``keys`` is known to be in Kafka."""
        return self._records.delivered(keys)

    def truth_from(self) -> int:
        """The start of this process's first minute whose truth is not known to be in Kafka."""
        minutes = [minute for _, minute in self.minutes]
        minutes += [record.minute for record in self._records.pending.values() if record.own]
        return min([self.closed_through, *minutes])

    async def resolve(self) -> None:
        """Count again from Kafka each settled (source, minute) that had a record time out in flight."""
        self._take_back_failures()
        self.uncertain &= set(self.minutes)
        settled = {key for key in self.uncertain if key[1] + MINUTE_MS <= self.settled_through}
        if not settled:
            return
        since = {self.incarnation: min(minute for _, minute in settled)}
        found = await asyncio.to_thread(
            recount_derived, self._connection, self._kinds, self._decode, incarnations=since
        )
        for key in settled:
            self.minutes[key] = found.get(key, MinuteCounts())
        self.uncertain -= settled
        log.info("truth: counted again from Kafka %d source minute(s) whose records timed out", len(settled))

    def _take_back_failures(self) -> None:
        timed_out, self._timed_out = self._timed_out, []
        for message in timed_out:
            source = header(message.headers(), SOURCE_HEADER)
            if source is not None:
                self.uncertain.add((source, minute_of(message.timestamp()[1])))
        failed, self._failed = self._failed, []
        for message in failed:
            source = header(message.headers(), SOURCE_HEADER)
            role = self._kinds.get(str(message.topic()))
            counts = self.minutes.get((str(source), minute_of(message.timestamp()[1])))
            if role is not None and counts is not None:
                counts.add_derived(str(message.topic()), role, self._decode(role, message.value() or b""), n=-1)

    async def recover(self, marks: TruthMarks, silent_seconds: float) -> tuple[list[str], list[str]]:
        """Publish what processes silent for ``silent_seconds`` (killed) left unpublished, counted again from
        Kafka: (the incarnations claimed, the keys of the truth records sent for them). Once ``delivered(keys)``,
        mark the incarnations ended."""
        claimed = await asyncio.to_thread(marks.claim_dead, self.incarnation, silent_seconds)
        if not claimed:
            return [], []
        found = await asyncio.to_thread(
            recount_derived, self._connection, self._kinds, self._decode, incarnations=claimed
        )
        now_ms = self._clock()
        keys = [
            self._send(source, minute, counts, now_ms, own=False) for (source, minute), counts in sorted(found.items())
        ]
        log.info(
            "truth: counted from Kafka what worker process(es) %s left unpublished: %d source minute(s)",
            ", ".join(f"{incarnation} from {since}" for incarnation, since in sorted(claimed.items())),
            len(found),
        )
        return sorted(claimed), keys
