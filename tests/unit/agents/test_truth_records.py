"""Truth records in flight: pending until the producer is seen empty after them, sent again when they failed."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError

from agents.truth_records import Failure, Pending, TruthRecords
from tests.unit.support import RecordingProducer


class Message:
    def __init__(self, topic: str, key: bytes) -> None:
        self._topic, self._key = topic, key

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes:
        return self._key


def records() -> tuple[TruthRecords, RecordingProducer]:
    found, producer = TruthRecords("truth.v1"), RecordingProducer()
    found.attach(producer)  # type: ignore[arg-type]
    return found, producer


def test_a_record_is_pending_until_the_queue_is_seen_empty_after_it() -> None:
    found, producer = records()
    found.send("0:0", Pending(0, 0, b"v", 1_000))
    found.send("0:60000", Pending(0, 60_000, b"w", 2_000), track=False)  # sent, not waited for
    assert producer.sent == [("truth.v1", b"0:0", b"v", 1_000, None), ("truth.v1", b"0:60000", b"w", 2_000, None)]
    assert not found.delivered(["0:0"])
    found.settle(999)  # seen empty before it was sent: proves nothing
    assert list(found.pending) == ["0:0"]
    found.settle(1_000)
    assert found.delivered(["0:0", "0:60000"])


def test_a_failed_truth_record_stays_pending_and_is_sent_again_once() -> None:
    found, producer = records()
    found.send("s:0", Pending("orders:a", 0, b"v", 1_000, own=False))
    error: Any = KafkaError(KafkaError._MSG_TIMED_OUT)
    assert found.sort_report(error, Message("truth.v1", b"s:0")) is Failure.TRUTH  # type: ignore[arg-type]
    assert found.sort_report(error, Message("truth.v1", b"s:0")) is Failure.TRUTH  # type: ignore[arg-type]
    found.settle(5_000)
    assert list(found.pending) == ["s:0"]  # failed: not delivered, whatever the queue says
    found.resend(6_000)
    assert producer.sent[1:] == [("truth.v1", b"s:0", b"v", 6_000, None)]
    assert found.pending["s:0"] == Pending("orders:a", 0, b"v", 6_000, own=False)
    found.settle(6_000)
    assert found.delivered(["s:0"])


def test_other_failures_are_sorted_for_the_teller() -> None:
    found, _ = records()
    timed_out: Any = KafkaError(KafkaError._MSG_TIMED_OUT)
    refused: Any = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
    assert found.sort_report(timed_out, Message("orders.v1", b"k")) is Failure.TIMED_OUT  # type: ignore[arg-type]
    assert found.sort_report(refused, Message("orders.v1", b"k")) is Failure.FAILED  # type: ignore[arg-type]
    assert found.sort_report(refused, Message("truth.v1", b"unknown")) is Failure.TRUTH  # type: ignore[arg-type]
    found.resend(1)  # a truth record that was never pending is not sent again
    assert found.pending == {}
