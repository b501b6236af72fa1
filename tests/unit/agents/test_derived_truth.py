"""The agents' truth: what a minute of derived records holds, when it is published, what a failure, a timeout or a
killed process changes, and its Avro record (old readers and records of the first version included)."""

from __future__ import annotations

import asyncio
import io
import json
import time

import pytest
from confluent_kafka import KafkaError
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from agents.ledger import Decided
from app.truth import MINUTE_MS, MinuteCounts, source_key
from app.wire.headers import SOURCE_HEADER
from schemas import load_schema
from tests.unit.agents.support import ReportedMessage, stock_agent, truth
from tests.unit.support import RecordingProducer

PAYMENT = {"status": "CAPTURED", "method": "CARD", "event_time": 0}
DECLINED = {"status": "DECLINED", "method": "PAYPAL", "event_time": 0}
SHIPMENT = {"carrier": "DHL", "event_time": 0}
SALE = {"change_type": "SALE", "delta": -3, "event_time": 0}
RESTOCK = {"change_type": "RESTOCK", "delta": 40, "event_time": 0}


def test_derived_records_count_by_status_method_carrier_type_and_units_shipped() -> None:
    counts = MinuteCounts()
    counts.add_derived("payments.v1", "payments", PAYMENT)
    counts.add_derived("payments.v1", "payments", PAYMENT)
    counts.add_derived("payments.v1", "payments", DECLINED)
    counts.add_derived("shipments.v1", "shipments", SHIPMENT)
    counts.add_derived("inventory-changes.v1", "inventory_changes", SALE)
    counts.add_derived("inventory-changes.v1", "inventory_changes", RESTOCK)
    assert counts.records == {"payments.v1": 3, "shipments.v1": 1, "inventory-changes.v1": 2}
    assert counts.payments == {"CAPTURED/CARD": 2, "DECLINED/PAYPAL": 1}
    assert counts.shipments == {"DHL": 1}
    assert counts.inventory_changes == {"SALE": 1, "RESTOCK": 1}
    assert counts.units_shipped == 3
    counts.add_derived("inventory-changes.v1", "inventory_changes", SALE, n=-1)
    assert counts.units_shipped == 0
    assert counts.inventory_changes["SALE"] == 0


def test_a_derived_record_fits_the_schema_and_reads_back() -> None:
    counts = MinuteCounts()
    counts.add_derived("payments.v1", "payments", PAYMENT)
    counts.add_derived("inventory-changes.v1", "inventory_changes", SALE)
    value = counts.value("app", -1, 4 * MINUTE_MS, True, "stock:abc")
    schema = parse_schema(json.loads(load_schema("truth")))
    out = io.BytesIO()
    schemaless_writer(out, schema, value, strict=True)
    read = schemaless_reader(io.BytesIO(out.getvalue()), schema, None)
    assert read["source"] == "stock:abc"
    assert read["shard"] == -1
    assert MinuteCounts.from_value(read).comparable() == counts.comparable()
    assert source_key("stock:abc", 4 * MINUTE_MS) == f"stock:abc:{4 * MINUTE_MS}"


def test_a_record_of_the_first_schema_reads_with_the_new_fields_defaulted() -> None:
    schema = json.loads(load_schema("truth"))
    added = {"source", "payments", "shipments", "units_shipped"}
    first = {**schema, "fields": [field for field in schema["fields"] if field["name"] not in added]}
    assert all("default" in field for field in schema["fields"] if field["name"] in added)
    value = MinuteCounts().value("app", 2, 0, True)
    for name in added:
        del value[name]
    out = io.BytesIO()
    schemaless_writer(out, parse_schema(first), value, strict=True)
    read = schemaless_reader(io.BytesIO(out.getvalue()), parse_schema(first), parse_schema(schema))
    assert read["source"] == "generator"
    assert (read["payments"], read["shipments"], read["units_shipped"]) == ({}, {}, 0)


# ----- the agents' book: publishing, failures, timeouts, a killed process


def StubMessage(  # reads like the record it stands for
    topic: str, key: str, source: str | None, timestamp_ms: int, value: dict | None = None
) -> ReportedMessage:
    """A failed record of an agent's ``source`` (None: no source header), as the delivery report hands it over."""
    headers = [] if source is None else [(SOURCE_HEADER, source.encode())]
    return ReportedMessage(topic, key, headers, timestamp_ms, json.dumps(value or {}).encode())


def published(producer: RecordingProducer) -> dict[str, dict]:
    return {key.decode(): json.loads(value) for topic, key, value, _, _ in producer.sent if topic == "truth.v1"}


def test_the_source_header_names_the_agent_and_the_process() -> None:
    told, _ = truth()
    assert told.headers("stock") == [(SOURCE_HEADER, b"stock:inc1")]
    assert told.headers("stock") is told.headers("stock")


def test_a_minute_is_published_once_over_and_settled_and_truth_from_moves_once_delivered() -> None:
    told, producer = truth()
    told.count("orders", "payments", PAYMENT, 10)
    told.count("stock", "shipments", SHIPMENT, 20)
    told.count("stock", "shipments", SHIPMENT, MINUTE_MS + 5)
    told.settle(MINUTE_MS - 1)  # the minute is not over when the queue was last seen empty
    assert told.publish(MINUTE_MS) == 0
    told.settle(MINUTE_MS)
    assert told.publish(MINUTE_MS) == 2
    sent = published(producer)
    assert sent["orders:inc1:0"]["payments"] == {"CAPTURED/CARD": 1}
    assert sent["orders:inc1:0"]["source"] == "orders:inc1"
    assert sent["orders:inc1:0"]["shard"] == -1
    assert sent["stock:inc1:0"]["shipments"] == {"DHL": 1}
    assert told.truth_from() == 0  # the truth records are not known to be in Kafka yet
    told.settle(MINUTE_MS + 10)
    assert told.truth_from() == MINUTE_MS  # the next minute is still open
    assert told.publish(MINUTE_MS + 10, everything=True) == 1  # a graceful stop: nothing more will be sent
    told.settle(MINUTE_MS + 20)
    assert told.truth_from() == 2 * MINUTE_MS
    assert not told.minutes
    assert not told.pending()


def test_a_payment_that_surely_failed_is_taken_back_out() -> None:
    told, producer = truth()
    told.count("orders", "payments", PAYMENT, 10)
    told.count("orders", "payments", DECLINED, 11)
    failed = StubMessage("payments.v1", "o1", "orders:inc1", 11, DECLINED)
    told.report(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), failed)  # type: ignore[arg-type]
    told.settle(MINUTE_MS)
    told.publish(MINUTE_MS)
    value = published(producer)["orders:inc1:0"]
    assert value["payments"] == {"CAPTURED/CARD": 1}
    assert value["records"] == {"payments.v1": 1}


def test_a_failed_truth_record_is_sent_again_and_holds_truth_from() -> None:
    told, producer = truth()
    told.count("orders", "payments", PAYMENT, 10)
    told.settle(MINUTE_MS)
    told.publish(MINUTE_MS)
    told.report(KafkaError(KafkaError._MSG_TIMED_OUT), StubMessage("truth.v1", "orders:inc1:0", None, MINUTE_MS))  # type: ignore[arg-type]
    told.settle(MINUTE_MS + 5)
    assert told.truth_from() == 0
    told.publish(MINUTE_MS + 10)
    assert [key for topic, key, _, _, _ in producer.sent if topic == "truth.v1"] == [b"orders:inc1:0"] * 2
    told.settle(MINUTE_MS + 20)
    assert told.truth_from() == MINUTE_MS


def test_a_timed_out_record_has_its_minute_counted_again_from_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    told, producer = truth()
    for _ in range(3):
        told.count("stock", "inventory_changes", SALE, 10)
    told.count("stock", "inventory_changes", SALE, MINUTE_MS + 1)
    timed_out = StubMessage("inventory-changes.v1", "1", "stock:inc1", 10, SALE)
    told.report(KafkaError(KafkaError._MSG_TIMED_OUT), timed_out)  # type: ignore[arg-type]
    told.settle(2 * MINUTE_MS)
    assert told.publish(2 * MINUTE_MS) == 0  # minute 0 waits, and the later one behind it
    asked: list[dict] = []

    def counted_in_kafka(connection: object, kinds: object, decode: object, *, incarnations: dict) -> dict:
        asked.append(incarnations)
        found = MinuteCounts()
        for _ in range(2):  # the timed-out record did not reach Kafka
            found.add_derived("inventory-changes.v1", "inventory_changes", SALE)
        return {("stock:inc1", 0): found}

    monkeypatch.setattr("agents.derived_truth.recount_derived", counted_in_kafka)
    asyncio.run(told.resolve())
    assert asked == [{"inc1": 0}]
    assert told.publish(2 * MINUTE_MS) == 2
    assert published(producer)["stock:inc1:0"]["units_shipped"] == 6


class Marks:
    """The truth marks' claim, as Postgres answers it: one silent process."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, float]] = []

    def claim_dead(self, me: str, silent_seconds: float) -> dict[str, int]:
        self.asked.append((me, silent_seconds))
        return {"dead1": MINUTE_MS}


def test_a_killed_process_s_minutes_are_published_from_a_recount_without_holding_this_one_s_truth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    told, producer = truth(now_ms=5 * MINUTE_MS)
    marks = Marks()
    recounted = MinuteCounts()
    recounted.add_derived("payments.v1", "payments", PAYMENT)

    def counted_in_kafka(connection: object, kinds: object, decode: object, *, incarnations: dict) -> dict:
        assert incarnations == {"dead1": MINUTE_MS}
        return {("orders:dead1", MINUTE_MS): recounted}

    monkeypatch.setattr("agents.derived_truth.recount_derived", counted_in_kafka)
    claimed, keys = asyncio.run(told.recover(marks, 30.0))  # type: ignore[arg-type]
    assert marks.asked == [("inc1", 30.0)]
    assert (claimed, keys) == (["dead1"], [f"orders:dead1:{MINUTE_MS}"])
    assert published(producer)[keys[0]]["payments"] == {"CAPTURED/CARD": 1}
    assert told.truth_from() == 5 * MINUTE_MS  # another process's minutes never hold this one's mark back
    assert not told.delivered(keys)
    told.settle(int(time.time() * 1000) + 1)  # the producer's queue seen empty after they were sent
    assert told.delivered(keys)


# ----- the stock agent: every record it sends carries its source and is counted; nothing once stopping


class OneBatchLedger:
    """Decides any batch to one shipment and its SALE; nothing in the outbox."""

    async def undelivered(self) -> Decided:
        return Decided()

    async def decide(self, requests: list) -> Decided:
        return Decided(records=[("shipments", "o1", SHIPMENT), ("inventory_changes", "5", SALE)])


@pytest.mark.parametrize("stopping", [False, True])
def test_the_stock_agent_s_records_carry_their_source_and_are_counted(stopping: bool) -> None:
    told, _ = truth()
    agent, producer = stock_agent(OneBatchLedger(), told, stopping=stopping)
    asyncio.run(agent.take([]))
    if stopping:  # left in the outbox, sent by the next start: neither sent nor counted here
        assert producer.sent == []
        assert not told.minutes
        return
    source = [(SOURCE_HEADER, b"stock:inc1")]
    assert [(topic, headers) for topic, _, _, _, headers in producer.sent] == [
        ("shipments.v1", source),
        ("inventory-changes.v1", source),
    ]
    (counts,) = told.minutes.values()
    assert counts.shipments == {"DHL": 1}
    assert counts.units_shipped == 3
