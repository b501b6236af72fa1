"""Shared by the agents' tests (and the agents' clock's): the derived truth's topics, a JSON codec, a DerivedTruth
wired to it and to a producer that keeps what is sent, and a stock agent sending with both.

Not a test module: pytest does not collect it.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from agents.derived_truth import DerivedTruth
from agents.stock import StockAgent
from app.derivation.agent_clock import AgentClock
from tests.unit.support import RecordingProducer

TOPICS = {
    "truth": "truth.v1",
    "payments": "payments.v1",
    "shipments": "shipments.v1",
    "inventory_changes": "inventory-changes.v1",
}


class StubCodec:
    def encode(self, role: str, value: dict) -> bytes:
        return json.dumps(value).encode()


def truth(now_ms: int = 0) -> tuple[DerivedTruth, RecordingProducer]:
    told = DerivedTruth(
        "app",
        StubCodec(),  # type: ignore[arg-type]
        TOPICS,
        lambda role, raw: json.loads(raw),
        {},
        incarnation="inc1",
        now_ms=now_ms,
    )
    producer = RecordingProducer()
    told.attach(producer)  # type: ignore[arg-type]
    return told, producer


def stock_agent(
    ledger: Any, told: DerivedTruth, *, stopping: bool = False, clock: AgentClock | None = None
) -> tuple[StockAgent, RecordingProducer]:
    """A stock agent deciding with ``ledger`` (no intake: ``take`` is handed its batches), counting in ``told`` and
    sending the codec's JSON to the TOPICS through a RecordingProducer; ``stopping`` says whether it is stopping."""
    producer = RecordingProducer()
    agent = StockAgent(
        ledger,
        None,  # type: ignore[arg-type]
        StubCodec(),  # type: ignore[arg-type]
        producer,  # type: ignore[arg-type]
        TOPICS,
        "requests",
        Counter(),
        lambda: stopping,
        truth=told,
        clock=clock,
    )
    return agent, producer


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
