"""Shared by the unit tests of every package: a producer that takes every record at once and keeps it.

Not a test module: pytest does not collect it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from app.wire.headers import Headers

#: What a RecordingProducer's ``clock`` reads (epoch ms) unless a test sets its own.
CLOCK_MS = 1_700_000_000_000


class Sent(NamedTuple):
    """One record handed to the producer, whole: what ``EventProducer.send`` takes (a plain tuple compares equal)."""

    topic: str
    key: bytes
    value: bytes
    timestamp_ms: int
    headers: Headers | None


class RecordingProducer:
    """Stands in for ``app.producer.EventProducer``: every record sent (``send`` or ``send_surely``) is taken at once
    and kept, in order, in ``sent``; nothing is ever left queued, so ``queued`` and ``flush`` answer 0.

    Subclass it for a test that needs the producer to behave otherwise (a full queue, a report during a send).
    """

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.drained_ms = 0
        self.clock: Callable[[], int] = lambda: CLOCK_MS

    def send(self, topic: str, key: bytes, value: bytes, timestamp_ms: int, headers: Headers | None = None) -> bool:
        self.sent.append(Sent(topic, key, value, timestamp_ms, headers))
        return True

    def send_surely(
        self, topic: str, key: bytes, value: bytes, timestamp_ms: int, headers: Headers | None = None
    ) -> None:
        self.sent.append(Sent(topic, key, value, timestamp_ms, headers))

    def serve(self, timeout: float = 0.0) -> None:
        pass

    def queued(self) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0
