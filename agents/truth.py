"""The truth topic: the generator publishes, per shard and minute, exact counts of what it emitted.

The generator counts each record it hands to the producer (``app.truth.TruthBook``); the producer reports each
record whose delivery failed, and it is taken back out. A minute is published once it is over and the producer's
queue has been seen empty since (the generator waits for that at the end of each minute). Once the truth records
of a minute are in Kafka, the shards' ``truth_from`` (the start of the first minute not yet published) moves on in
the shards table; a shard's next owner (after a move, a graceful stop or SIGKILL) first counts the shard's records
from that moment on again from Kafka (``app.truth_recount``), so a minute a killed worker left open is published
whole, and a minute it shares with its previous owner holds both owners' records.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, Message

from agents.truth_records import Failure, Pending, TruthRecords
from app.avro import AvroCodec
from app.producer import EventProducer
from app.truth import (
    Decode,
    MinuteCounts,
    TruthBook,
    classify,
    header,
    minute_of,
    truth_key,
)
from app.truth_recount import recount
from app.wire.headers import DUPLICATE_HEADER, SHARD_HEADER, Headers
from app.wire.roles import TRUTH

log = logging.getLogger(__name__)



class TruthTeller:
    """Counts this worker's shards per minute, publishes each minute once it is final, and knows how far the
    published truth of each shard reaches."""

    def __init__(
        self,
        app_id: str,
        codec: AvroCodec,
        topics: Mapping[str, str],
        decode: Decode,
        connection: Mapping[str, Any],
        kinds: Mapping[str, str],
    ) -> None:
        """``topics``: topic names by role; ``kinds``: the generated topics (topic name -> event kind), where a
        shard's records are counted again from Kafka; ``decode(role, raw)`` reads a record of a role."""
        self.book = TruthBook()
        self._app_id = app_id
        self._codec = codec
        self._records = TruthRecords(topics[TRUTH])
        self._decode = decode
        self._connection = dict(connection)
        self._kinds = dict(kinds)
        #: Records whose delivery failed, to be taken out of the counts at the next ``publish``.
        self._failed: list[Message] = []
        #: Records that timed out in flight: Kafka may or may not hold them, so their (shard, minute) is counted
        #: again from Kafka before it is published (``resolve``).
        self._timed_out: list[Message] = []
        self.uncertain: set[tuple[int, int]] = set()
        self._headers: dict[int, Headers] = {}

    def attach(self, producer: EventProducer) -> None:
        """Publish through ``producer``, whose reports of failed deliveries come to ``report``."""
        self._records.attach(producer)

    def headers(self, shard: int) -> Headers:
        """The header every record of ``shard`` carries (one list per shard, shared)."""
        found = self._headers.get(shard)
        if found is None:
            found = self._headers[shard] = [(SHARD_HEADER, str(shard).encode())]
        return found

    def report(self, error: KafkaError, message: Message) -> None:
        """The producer's report of one record it could not deliver (called inside its poll)."""
        failure = self._records.sort_report(error, message)
        if failure is Failure.TIMED_OUT:
            self._timed_out.append(message)
        elif failure is Failure.FAILED:
            self._failed.append(message)

    def settle(self, now_ms: int) -> None:
        """The producer's queue is empty at ``now_ms``: what was handed to it before is delivered or reported."""
        self.book.settle(now_ms)
        self._records.settle(now_ms)

    def publish(self, now_ms: int, held: Callable[[int], bool]) -> int:
        """Take back failed records, then publish every minute that is over and settled; the records published.

        Only the shards ``held`` reports true for are published (a shard that moved is its new owner's)."""
        self._take_back_failures()
        self._records.resend(now_ms)
        published = 0
        for minute in self.book.ready():
            if any(key in self.book.minutes for key in self.uncertain if key[1] == minute):
                break  # counted again from Kafka first (``resolve``); later minutes wait, in order
            for shard, counts in sorted(self.book.take(minute).items()):
                if held(shard) and counts.total:
                    self._send(shard, minute, counts, True, now_ms)
                    published += 1
        return published

    def publish_open(self, now_ms: int) -> int:
        """At a graceful stop: publish what each shard emitted so far in the minutes still open, marked incomplete;
        call it only once the producer's queue is empty (``settle``)."""
        self._take_back_failures()
        published = 0
        for (shard, minute), counts in sorted(self.book.minutes.items()):
            if (shard, minute) in self.uncertain:
                continue  # left to the shard's next owner, who counts it from Kafka
            if counts.total:
                self._send(shard, minute, counts, False, now_ms)
                published += 1
        return published

    def _send(self, shard: int, minute: int, counts: MinuteCounts, complete: bool, now_ms: int) -> None:
        value = self._codec.encode(TRUTH, counts.value(self._app_id, shard, minute, complete))
        # An incomplete minute (a graceful stop) is not waited for: the shard's next owner counts it from Kafka.
        self._records.send(truth_key(shard, minute), Pending(shard, minute, value, now_ms), track=complete)

    async def resolve(self) -> None:
        """Count again from Kafka each settled (shard, minute) that had a record time out in flight."""
        self._take_back_failures()
        self.uncertain &= set(self.book.minutes)  # of shards still held here
        ready = set(self.book.ready())
        settled = {(shard, minute) for shard, minute in self.uncertain if minute in ready}
        if not settled:
            return
        since: dict[int, int] = {}
        for shard, minute in sorted(settled):
            since.setdefault(shard, minute)
        found = await asyncio.to_thread(recount, self._connection, self._kinds, self._decode, shards=since)
        for key in settled:
            if key in self.book.minutes:
                self.book.minutes[key] = found.get(key, MinuteCounts())
        self.uncertain -= settled
        log.info("truth: counted again from Kafka %d shard minute(s) whose records timed out in flight", len(settled))

    def _take_back_failures(self) -> None:
        timed_out, self._timed_out = self._timed_out, []
        for message in timed_out:
            made_by = header(message.headers(), SHARD_HEADER)
            if made_by is not None:
                self.uncertain.add((int(made_by), minute_of(message.timestamp()[1])))
        failed, self._failed = self._failed, []
        for message in failed:
            topic, headers = str(message.topic()), message.headers()
            made_by, kind = header(headers, SHARD_HEADER), self._kinds.get(topic)
            if made_by is None or kind is None:
                continue
            timestamp = message.timestamp()[1]
            counts = self.book.minutes.get((int(made_by), minute_of(timestamp)))
            if counts is None:
                continue
            if header(headers, DUPLICATE_HEADER) is not None:
                counts.add_duplicate(topic, n=-1)
                continue
            value, late, bad_kind = classify(topic, kind, headers, message.value(), timestamp, self._decode)
            counts.add(topic, kind, value, late, bad_kind, n=-1)

    def truth_from(self, shard: int) -> int:
        """The start of ``shard``'s first minute whose truth is not yet in Kafka."""
        minutes = [minute for (held, minute) in self.book.minutes if held == shard]
        minutes += [record.minute for record in self._records.pending.values() if record.owner == shard]
        return min([self.book.closed_through, *minutes])

    async def catch_up(self, shards: dict[int, int]) -> int:
        """Before ``shards`` (shard -> since when) start here: count their records from then on again from Kafka
        into the book (minutes their previous owner left unpublished), in one read; the records found."""
        found = await asyncio.to_thread(recount, self._connection, self._kinds, self._decode, shards=shards)
        by_shard: Counter[int] = Counter()
        for (shard, minute), counts in found.items():
            self.book.counts(shard, minute).merge(counts)
            by_shard[shard] += counts.total
        if by_shard:
            log.info(
                "truth: counted from Kafka the records whose truth was not published: %s",
                ", ".join(f"shard {shard} {count} from {shards[shard]}" for shard, count in sorted(by_shard.items())),
            )
        return sum(by_shard.values())
