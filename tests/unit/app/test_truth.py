"""The truth topic's counts and book: what a minute holds, when it may be published, and its Avro record."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime

import pytest
from confluent_kafka import KafkaError
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from agents.truth import TruthTeller
from app.truth import (
    MINUTE_MS,
    MinuteCounts,
    TruthBook,
    classify,
    header,
    minute_of,
    truth_key,
)
from app.wire.headers import BAD_RECORD_HEADER, SHARD_HEADER, Headers
from schemas import load_schema
from tests.unit.agents.support import ReportedMessage, StubCodec
from tests.unit.support import RecordingProducer

ORDER = {"quantity": 3, "amount": 1_500, "currency": "EUR", "event_time": 0}
VIEW = {"interaction_type": "PAGE_VIEW", "event_time": 0}
RESTOCK = {"change_type": "RESTOCK", "event_time": 0}


def test_minute_of_is_the_start_of_the_minute() -> None:
    assert minute_of(0) == 0
    assert minute_of(MINUTE_MS - 1) == 0
    assert minute_of(MINUTE_MS) == MINUTE_MS
    assert minute_of(5 * MINUTE_MS + 17) == 5 * MINUTE_MS


def test_counts_by_topic_and_kind_good_records_only() -> None:
    counts = MinuteCounts()
    counts.add("orders.v1", "orders", ORDER, False, None)
    counts.add("orders.v1", "orders", ORDER, True, None)
    counts.add("orders.v1", "orders", None, False, "undecodable")
    counts.add("clicks", "customer_interactions", VIEW, False, None)
    counts.add("requests", "inventory_changes", RESTOCK, True, None)
    assert counts.records == {"orders.v1": 3, "clicks": 1, "requests": 1}
    assert counts.orders == 2
    assert counts.units_ordered == 6
    assert counts.revenue_cents == {"EUR": 3_000}
    assert counts.interactions == {"PAGE_VIEW": 1}
    assert counts.inventory_changes == {"RESTOCK": 1}
    assert counts.late_events == {"orders.v1": 1, "requests": 1}
    assert counts.bad_records == {"undecodable": 1}
    assert counts.total == 5


def test_taking_a_record_back_undoes_it() -> None:
    counts = MinuteCounts()
    counts.add("orders.v1", "orders", ORDER, True, None)
    counts.add("orders.v1", "orders", ORDER, False, None)
    counts.add("orders.v1", "orders", ORDER, True, None, n=-1)
    alone = MinuteCounts()
    alone.add("orders.v1", "orders", ORDER, False, None)
    assert counts.comparable() == alone.comparable()


def test_merge_adds_every_count() -> None:
    first, second, both = MinuteCounts(), MinuteCounts(), MinuteCounts()
    for counts in (first, both):
        counts.add("orders.v1", "orders", ORDER, True, None)
    for counts in (second, both):
        counts.add("clicks", "customer_interactions", VIEW, False, None)
        counts.add("orders.v1", "orders", None, False, "truncated_body")
    first.merge(second)
    assert first.comparable() == both.comparable()


def test_the_record_fits_the_schema_and_reads_back() -> None:
    counts = MinuteCounts()
    counts.add("orders.v1", "orders", ORDER, True, None)
    counts.add("orders.v1", "orders", None, False, "wrong_magic_byte")
    counts.add("clicks", "customer_interactions", VIEW, False, None)
    value = counts.value("app", 3, 7 * MINUTE_MS, True)
    schema = parse_schema(json.loads(load_schema("truth")))
    out = io.BytesIO()
    schemaless_writer(out, schema, value, strict=True)
    read = schemaless_reader(io.BytesIO(out.getvalue()), schema, None)
    assert read["shard"] == 3
    assert read["minute"] == datetime.fromtimestamp(7 * 60, tz=UTC)
    assert MinuteCounts.from_value(read).comparable() == counts.comparable()
    assert truth_key(3, 7 * MINUTE_MS) == f"3:{7 * MINUTE_MS}"


def test_a_minute_is_ready_once_over_and_settled_after_its_end() -> None:
    book = TruthBook()
    book.counts(0, 0).add("t", "orders", ORDER, False, None)
    assert not book.unsettled(MINUTE_MS - 1)  # not over
    assert book.unsettled(MINUTE_MS)
    book.settle(MINUTE_MS - 1)  # the queue was empty before the minute ended: its last records may be in flight
    assert book.ready() == []
    assert book.unsettled(MINUTE_MS)
    book.settle(MINUTE_MS)
    assert not book.unsettled(MINUTE_MS + 5)
    assert book.ready() == [0]
    taken = book.take(0)
    assert list(taken) == [0]
    assert book.closed_through == MINUTE_MS
    assert book.ready() == []


def test_settling_never_goes_back() -> None:
    book = TruthBook()
    book.settle(5 * MINUTE_MS)
    book.settle(MINUTE_MS)
    assert book.settled_through == 5 * MINUTE_MS


def test_take_returns_every_shard_of_the_minute_and_leaves_later_ones() -> None:
    book = TruthBook()
    for shard in (0, 1):
        book.counts(shard, 0).add("t", "orders", ORDER, False, None)
    book.counts(0, MINUTE_MS).add("t", "orders", ORDER, False, None)
    book.settle(2 * MINUTE_MS)
    assert book.ready() == [0, MINUTE_MS]
    assert sorted(book.take(0)) == [0, 1]
    assert list(book.open_minutes(0)) == [MINUTE_MS]


def test_drop_forgets_shards_that_moved() -> None:
    book = TruthBook()
    book.counts(0, 0)
    book.counts(1, 0)
    book.drop([1])
    assert list(book.minutes) == [(0, 0)]


def test_so_far_counts_the_open_minutes_and_those_taken_or_dropped_and_never_goes_down() -> None:
    book = TruthBook()
    for shard, minute in ((0, 0), (1, 0), (0, MINUTE_MS), (1, MINUTE_MS)):
        book.counts(shard, minute).add("orders.v1", "orders", ORDER, shard == 1, None)
    book.counts(0, MINUTE_MS).add("orders.v1", "orders", None, False, "undecodable")
    seen = [book.so_far()]
    book.settle(MINUTE_MS)
    book.take(0)
    seen.append(book.so_far())
    book.drop([1])
    seen.append(book.so_far())
    assert book.minutes.keys() == {(0, MINUTE_MS)}
    for counts in seen:
        assert counts.orders == 4
        assert counts.records == {"orders.v1": 5}
        assert counts.late_events == {"orders.v1": 2}
        assert counts.bad_records == {"undecodable": 1}
    book.counts(0, MINUTE_MS).add("orders.v1", "orders", ORDER, False, None)
    assert book.so_far().orders == 5
    assert book.minutes[0, MINUTE_MS].orders == 2  # the book's own counts are not touched by reading


def test_header_reads_pairs_and_mappings() -> None:
    assert header([("a", b"1"), (BAD_RECORD_HEADER, b"undecodable")], BAD_RECORD_HEADER) == "undecodable"
    assert header({"x": "2"}, "x") == "2"
    assert header(None, "x") is None


def test_classify_counts_bad_records_by_header_without_decoding() -> None:
    def never(role: str, raw: bytes) -> dict:
        raise AssertionError("a bad record must not be decoded")

    assert classify("t", "orders", [(BAD_RECORD_HEADER, b"undecodable")], b"\x07", 5, never) == (
        None,
        False,
        "undecodable",
    )


@pytest.mark.parametrize(
    ("event_time", "late"),
    [
        (1_000, False),
        (999, True),
        (datetime.fromtimestamp(0.5, tz=UTC), True),
        (datetime.fromtimestamp(1, tz=UTC), False),
    ],
)
def test_classify_finds_late_events_by_event_time_before_the_timestamp(event_time: object, late: bool) -> None:
    value = {**ORDER, "event_time": event_time}
    assert classify("t", "orders", [], b"raw", 1_000, lambda role, raw: value) == (value, late, None)


# ----- the teller: what it publishes, what it keeps for later, and where a shard's published truth ends


def StubMessage(  # reads like the record it stands for
    topic: str, key: str, shard: int, timestamp_ms: int, value: bytes = b"{}"
) -> ReportedMessage:
    """A failed record of generation ``shard``, as the delivery report hands it over."""
    return ReportedMessage(topic, key, [(SHARD_HEADER, str(shard).encode())], timestamp_ms, value)


class ReportingProducer(RecordingProducer):
    """Keeps records; ``during_send`` runs inside a send, as delivery reports run inside librdkafka's poll."""

    def __init__(self) -> None:
        super().__init__()
        self.during_send: list = []

    def send_surely(
        self, topic: str, key: bytes, value: bytes, timestamp_ms: int, headers: Headers | None = None
    ) -> None:
        super().send_surely(topic, key, value, timestamp_ms, headers)
        while self.during_send:
            self.during_send.pop(0)()


def teller() -> tuple[TruthTeller, ReportingProducer]:
    topics = {"truth": "truth.v1", "orders": "orders.v1"}
    told = TruthTeller("app", StubCodec(), topics, lambda role, raw: ORDER, {}, {"orders.v1": "orders"})  # type: ignore[arg-type]
    producer = ReportingProducer()
    told.attach(producer)  # type: ignore[arg-type]
    return told, producer


def orders(count: int) -> MinuteCounts:
    counts = MinuteCounts()
    for _ in range(count):
        counts.add("orders.v1", "orders", ORDER, False, None)
    return counts


def published(producer: RecordingProducer) -> dict[str, dict]:
    return {key.decode(): json.loads(value) for topic, key, value, _, _ in producer.sent if topic == "truth.v1"}


def test_a_settled_minute_is_published_and_its_truth_counts_once_in_kafka() -> None:
    told, producer = teller()
    told.book.counts(0, 0).merge(orders(2))
    told.settle(MINUTE_MS)
    assert told.publish(MINUTE_MS, lambda shard: True) == 1
    assert published(producer)["0:0"]["orders"] == 2
    assert told.truth_from(0) == 0  # its truth record is not known to be in Kafka yet
    told.settle(MINUTE_MS + 1)
    assert told.truth_from(0) == MINUTE_MS


def test_a_truth_record_that_failed_is_sent_again_and_holds_truth_from() -> None:
    told, producer = teller()
    told.book.counts(0, 0).merge(orders(1))
    told.settle(MINUTE_MS)
    told.publish(MINUTE_MS, lambda shard: True)
    told.report(KafkaError(KafkaError._MSG_TIMED_OUT), StubMessage("truth.v1", "0:0", 0, MINUTE_MS))
    told.settle(MINUTE_MS + 5)
    assert told.truth_from(0) == 0
    told.publish(MINUTE_MS + 10, lambda shard: True)
    assert [key for topic, key, _, _, _ in producer.sent if topic == "truth.v1"] == [b"0:0", b"0:0"]


def test_a_failure_reported_while_resending_is_kept_for_the_next_round() -> None:
    told, producer = teller()
    for shard in (0, 1):
        told.book.counts(shard, 0).merge(orders(1))
    told.settle(MINUTE_MS)
    told.publish(MINUTE_MS, lambda shard: True)
    told.report(KafkaError(KafkaError._MSG_TIMED_OUT), StubMessage("truth.v1", "0:0", 0, MINUTE_MS))
    producer.during_send.append(
        lambda: told.report(KafkaError(KafkaError._MSG_TIMED_OUT), StubMessage("truth.v1", "1:0", 1, MINUTE_MS))
    )
    told.publish(MINUTE_MS + 10, lambda shard: True)  # resends 0:0; 1:0 fails meanwhile
    told.settle(MINUTE_MS + 20)
    assert told.truth_from(1) == 0, "shard 1's truth of minute 0 was forgotten"
    told.publish(MINUTE_MS + 30, lambda shard: True)
    assert [key for topic, key, _, _, _ in producer.sent if topic == "truth.v1"][-1] == b"1:0"


def test_a_record_that_surely_failed_is_taken_back_out() -> None:
    told, producer = teller()
    told.book.counts(0, 0).merge(orders(3))
    told.report(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), StubMessage("orders.v1", "o", 0, 10))
    told.settle(MINUTE_MS)
    told.publish(MINUTE_MS, lambda shard: True)
    assert published(producer)["0:0"]["orders"] == 2


def test_a_record_that_timed_out_has_its_minute_counted_again_from_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    told, producer = teller()
    told.book.counts(0, 0).merge(orders(3))
    told.book.counts(0, MINUTE_MS).merge(orders(1))
    told.report(KafkaError(KafkaError._MSG_TIMED_OUT), StubMessage("orders.v1", "o", 0, 10))
    told.settle(2 * MINUTE_MS)
    assert told.publish(2 * MINUTE_MS, lambda shard: True) == 0  # minute 0 waits, and the later one behind it
    asked: list[dict] = []

    def counted_in_kafka(connection: object, kinds: object, decode: object, *, shards: dict) -> dict:
        asked.append(shards)
        return {(0, 0): orders(3), (0, MINUTE_MS): orders(1)}  # the timed-out record did reach Kafka

    monkeypatch.setattr("agents.truth.recount", counted_in_kafka)
    asyncio.run(told.resolve())
    assert asked == [{0: 0}]
    assert told.publish(2 * MINUTE_MS, lambda shard: True) == 2
    assert published(producer)["0:0"]["orders"] == 3


def test_a_shard_not_held_is_not_published() -> None:
    told, producer = teller()
    told.book.counts(0, 0).merge(orders(1))
    told.book.counts(1, 0).merge(orders(1))
    told.settle(MINUTE_MS)
    told.publish(MINUTE_MS, lambda shard: shard == 0)
    assert list(published(producer)) == ["0:0"]


class QueueProducer(RecordingProducer):
    """A producer whose queue holds ``waiting`` records until told otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = 0

    def queued(self) -> int:
        return self.waiting


def test_the_generator_sends_nothing_at_a_minute_end_until_its_queue_is_empty() -> None:
    from agents.generation import Generation
    from app.settings import load_settings
    from app.stats import EmissionStats

    told, _ = teller()
    producer = QueueProducer()
    told.attach(producer)  # type: ignore[arg-type]
    clock = [10.0]  # seconds
    generation = Generation(
        load_settings({}),
        StubCodec(),  # type: ignore[arg-type]
        producer,  # type: ignore[arg-type]
        EmissionStats(),
        teller=told,
        wall_clock=lambda: clock[0],
    )
    told.book.counts(0, 0).merge(orders(2))
    producer.waiting = 7
    assert generation._settle_truth()  # the minute is not over: sending goes on
    clock[0] = 60.5
    assert not generation._settle_truth()  # over, and 7 of its records may still be in flight
    assert told.book.ready() == []
    producer.waiting = 0
    assert generation._settle_truth()
    assert told.book.ready() == [0]
    told.publish(60_500, lambda shard: True)
    assert published(producer)["0:0"]["orders"] == 2
