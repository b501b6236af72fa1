"""Truth records in flight, for both tellers (the generator's ``TruthTeller`` and the agents' ``DerivedTruth``).

A truth record handed to the producer is pending until the producer's queue has been seen empty after it
(``settle``); one whose delivery failed is sent again at the next ``resend``. The producer's report of any record
it could not deliver is sorted here (``sort_report``): a truth record is sent again, a counted record that timed
out may or may not be in Kafka, and one that surely failed is taken back out of the counts.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum

from confluent_kafka import KafkaError, Message

from app.producer import EventProducer


class Failure(Enum):
    """What a failed delivery was, for the teller that counted it."""

    TRUTH = "a truth record: sent again"
    TIMED_OUT = "possibly persisted: Kafka may hold it, or not"
    FAILED = "surely not delivered"


@dataclass(frozen=True)
class Pending:
    """A truth record handed to the producer and not yet known to be in Kafka."""

    #: Whose minute it tells: a shard (the generator's) or a source (an agent's).
    owner: Hashable
    minute: int
    value: bytes
    #: When it was handed to the producer (the teller's clock, epoch ms).
    sent_ms: int
    #: False for a record published for another (killed) process: it does not hold this one's truth back.
    own: bool = True


class TruthRecords:
    """The truth records of one teller: sent, pending until delivered, and sent again when their delivery failed."""

    def __init__(self, topic: str) -> None:
        """``topic``: the truth topic's name."""
        self.topic = topic
        self._producer: EventProducer | None = None
        #: key -> the record, until it is known to be in Kafka.
        self.pending: dict[str, Pending] = {}
        #: Keys whose delivery failed, to be sent again at the next ``resend``.
        self._resend: list[str] = []

    def attach(self, producer: EventProducer) -> None:
        """Send through ``producer``."""
        self._producer = producer

    @property
    def producer(self) -> EventProducer:
        assert self._producer is not None, "attach() a producer first"
        return self._producer

    def send(self, key: str, record: Pending, *, track: bool = True) -> None:
        """Hand ``record`` to the producer under ``key``; ``track``: keep it pending until delivered."""
        if track:
            self.pending[key] = record
        self.producer.send_surely(self.topic, key.encode(), record.value, record.sent_ms)

    def sort_report(self, error: KafkaError, message: Message) -> Failure:
        """What a failed delivery of ``message`` was; a pending truth record's key is kept to be sent again."""
        if message.topic() == self.topic:
            key = (message.key() or b"").decode()
            if key in self.pending:
                self._resend.append(key)
            return Failure.TRUTH
        if error.code() == KafkaError._MSG_TIMED_OUT:
            return Failure.TIMED_OUT
        return Failure.FAILED

    def settle(self, now_ms: int) -> None:
        """The producer's queue was empty at ``now_ms``: the records sent before it and not failed are delivered."""
        resend = set(self._resend)
        for key, record in list(self.pending.items()):
            if record.sent_ms <= now_ms and key not in resend:
                del self.pending[key]

    def resend(self, now_ms: int) -> None:
        """Send again the records whose delivery failed (one failing meanwhile is kept for the next round)."""
        resend, self._resend = self._resend, []
        for key in dict.fromkeys(resend):
            record = self.pending[key]
            self.send(key, Pending(record.owner, record.minute, record.value, now_ms, record.own))

    def delivered(self, keys: list[str]) -> bool:
        """True once every record of ``keys`` is known to be in Kafka."""
        return not any(key in self.pending for key in keys)
