"""The truth topic's counts and book: what a minute holds, when it may be published, and its Avro record."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from app.truth import (
    BAD_RECORD_HEADER,
    MINUTE_MS,
    MinuteCounts,
    TruthBook,
    classify,
    header,
    minute_of,
    truth_key,
)
from schemas import load_schema

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
