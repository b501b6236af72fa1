"""Shared by the agents' tests (and the agents' clock's): the derived truth's topics, a JSON codec, a producer that
keeps what is sent, and a DerivedTruth wired to both.

Not a test module: pytest does not collect it.
"""

from __future__ import annotations

import json

from agents.derived_truth import DerivedTruth

TOPICS = {
    "truth": "truth.v1",
    "payments": "payments.v1",
    "shipments": "shipments.v1",
    "inventory_changes": "inventory-changes.v1",
}


class StubCodec:
    def encode(self, role: str, value: dict) -> bytes:
        return json.dumps(value).encode()


class StubProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, int]] = []

    def send_surely(self, topic: str, key: bytes, value: bytes, timestamp_ms: int) -> None:
        self.sent.append((topic, key, value, timestamp_ms))


def truth(now_ms: int = 0) -> tuple[DerivedTruth, StubProducer]:
    told = DerivedTruth(
        "app",
        StubCodec(),  # type: ignore[arg-type]
        TOPICS,
        lambda role, raw: json.loads(raw),
        {},
        incarnation="inc1",
        now_ms=now_ms,
    )
    producer = StubProducer()
    told.attach(producer)  # type: ignore[arg-type]
    return told, producer


class ReportedMessage:
    """What confluent-kafka's delivery report hands over: the record's parts."""

    def __init__(self, topic: str, key: str, headers: list, timestamp_ms: int, value: bytes) -> None:
        self._parts = (topic, key.encode(), headers, timestamp_ms, value)

    def topic(self) -> str:
        return self._parts[0]

    def key(self) -> bytes:
        return self._parts[1]

    def headers(self) -> list:
        return self._parts[2]

    def timestamp(self) -> tuple[int, int]:
        return (1, self._parts[3])

    def value(self) -> bytes:
        return self._parts[4]
