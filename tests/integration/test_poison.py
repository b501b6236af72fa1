"""Poison input on the topics the agents consume, the internal requests topic included: every record goes to the
dead-letter topic with its reason, nothing reaches the ledger, and the agents keep deciding."""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from fastavro import parse_schema, schemaless_writer

from agents.requests import CHANGE, DUE, OPENING, ORDER, headers_of
from app.wire.headers import DLQ_ERROR_HEADER, DLQ_SOURCE_TOPIC_HEADER
from app.wire.roles import requests_topic
from tests.support import KAFKA_BOOTSTRAP, Worker, http_get, registry_client, run_worker, unique_topics, wait_for

pytestmark = pytest.mark.integration

PRODUCT = 7  # seeded: N_PRODUCTS >= 7
OTHER = 8


def _order(product_id: int, **changes: object) -> dict[str, object]:
    order: dict[str, object] = {
        "order_id": str(uuid.uuid4()),
        "user_id": 1,
        "product_id": product_id,
        "sku": "SKU",
        "quantity": 1,
        "unit_price": 100,
        "amount": 100,
        "currency": "USD",
        "session_id": None,
        "event_time": 1_700_000_000_000,
    }
    return {**order, **changes}


def _request(order: dict[str, object], payment: object = None, partition: int = 0, offset: int = 10**12) -> bytes:
    return json.dumps({"order": order, "payment": payment, "partition": partition, "offset": offset}).encode()


def _framed(schema_id: int, body: bytes) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + body


def _avro_order(orders: str, order: dict[str, object]) -> bytes:
    """``order`` as a valid Avro record under the orders topic's registered schema: only its meaning is wrong."""
    registered = registry_client().get_latest_version(f"{orders}-value")
    schema = parse_schema(json.loads(registered.schema.schema_str))
    out = io.BytesIO()
    schemaless_writer(out, schema, order)
    return _framed(registered.schema_id, out.getvalue())


def _poison(requests: str, orders: str) -> list[tuple[str, bytes, bytes, list | None, str]]:
    """(topic, key, value, headers, a part of the reason the dead letter must give)."""
    key = str(PRODUCT).encode()
    change = {"change_id": "c", "product_id": PRODUCT, "sku": "S", "warehouse_id": 999, "change_type": "RESTOCK",
              "delta": 5, "source_id": None, "event_time": 1}
    return [
        (requests, b"abc", b"x", headers_of(ORDER), "expected a product id"),
        (requests, b"999999", _request(_order(999_999)), headers_of(ORDER), "key 999999: no such product"),
        (requests, b"-5", b"item", headers_of(DUE), "key -5: no such product"),
        (requests, b"9" * 5000, b"x", headers_of(ORDER), "expected a product id"),
        (requests, key, os.urandom(64), headers_of(ORDER), "invalid order request"),
        (requests, key, b"[]", headers_of(ORDER), "invalid order request"),
        (requests, key, _request(_order(OTHER)), headers_of(ORDER), f"under the key of product {PRODUCT}"),
        (requests, key, _request(_order(PRODUCT, quantity=-3, amount=-300)), headers_of(ORDER), "quantity"),
        (requests, key, _request(_order(PRODUCT, order_id=None)), headers_of(ORDER), "order_id"),
        (requests, key, _request(_order(PRODUCT, sku="x" * 500_000)), headers_of(ORDER), "sku"),
        (requests, key, _request(_order(PRODUCT), payment=5), headers_of(ORDER), "payment int"),
        (requests, key, _request(_order(PRODUCT), offset=-1), headers_of(ORDER), "position"),
        (requests, key, b"\x07" + os.urandom(39), None, "magic byte"),
        (requests, key, b"\x00" + os.urandom(40), headers_of(CHANGE), ""),
        (requests, key, _framed(2_000_000_001, b"\x02x"), None, "schema id 2000000001 unknown"),
        (requests, key, b"not json", headers_of(OPENING), "invalid opening balance"),
        (requests, key, json.dumps(change).encode(), headers_of(OPENING), "warehouse_id=999"),
        (orders, b"k", b"\x07" + os.urandom(63), None, "magic byte"),  # random bytes, but never magic byte 0
        (orders, b"k", _framed(2_000_000_002, b"\x02x"), None, "schema id 2000000002 unknown"),
        (orders, b"k", b"\x00", None, ""),
        (orders, b"k", b"", None, "empty value"),
        (orders, b"k", _avro_order(orders, _order(PRODUCT, quantity=-2, amount=-200)), None, "quantity"),
        (orders, b"k", _avro_order(orders, _order(PRODUCT, sku="x" * 500_000)), None, "sku: 500000 characters"),
        (orders, b"k", _avro_order(orders, _order(999_999)), None, "product_id=999999: no such product"),
    ]


def _agents(worker: Worker) -> dict[str, int]:
    return http_get(worker.url + "/stats/?local")[1]["agents"]


def _dead_letters(topic: str) -> list[tuple[str, str]]:
    """(source topic, error) of every record of the dead-letter topic, read to its high watermarks."""
    consumer = Consumer({"bootstrap.servers": KAFKA_BOOTSTRAP, "group.id": f"poison-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p, end in marks.items() if end])
        left, found = {p for p, end in marks.items() if end}, []
        deadline = time.monotonic() + 60
        while left and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                headers = dict(message.headers() or [])
                found.append((headers[DLQ_SOURCE_TOPIC_HEADER].decode(), headers[DLQ_ERROR_HEADER].decode()))
                if message.offset() >= marks[message.partition()] - 1:
                    left.discard(message.partition())
        assert not left, "the dead-letter topic was not read to its high watermarks"
        return found
    finally:
        consumer.close()


@pytest.mark.parametrize("mode", ["kafka", "postgres"])
def test_poison_is_dead_lettered_with_its_reason_and_the_agents_go_on(
    tmp_path: Path, pg_database_factory: Callable[[], str], mode: str
) -> None:
    topics = unique_topics(f"poison-{mode}")
    settings = {
        **topics,
        "PG_DSN": pg_database_factory(),
        "N_USERS": "300",
        "N_PRODUCTS": "60",
        "N_WAREHOUSES": "3",
        "N_SUPPLIERS": "8",
        "CANON_INVENTORY": mode,
        "TARGET_EPS": "100",
        "DIURNAL_ENABLED": "false",
        "P_BAD_RECORD": "0",
    }
    with run_worker(tmp_path, settings) as worker:
        worker.wait_until("/stats/", 200, timeout=120)
        wait_for(lambda: _agents(worker).get("orders decided", 0) > 50, "the agents to decide orders", timeout=90)
        poison = _poison(requests_topic(topics["APP_ID"]), topics["TOPIC_ORDERS"])  # once the schemas are registered
        before = _agents(worker)
        producer = Producer({"bootstrap.servers": KAFKA_BOOTSTRAP, "message.max.bytes": 8_000_000})
        for topic, key, value, headers, _ in poison:
            producer.produce(topic, value, key, headers=headers)
        assert producer.flush(30) == 0
        awaited = f"{len(poison)} dead letters"
        wait_for(lambda: _agents(worker).get("dead letters", 0) >= len(poison), awaited, timeout=90)
        decided = _agents(worker)["orders decided"]
        wait_for(lambda: _agents(worker)["orders decided"] > decided + 50, "the agents to go on deciding", timeout=90)
        assert worker.process.poll() is None, worker.log()[-3000:]
        after = _agents(worker)
    assert after["dead letters"] == before.get("dead letters", 0) + len(poison), after
    letters = _dead_letters(topics["TOPIC_DEAD_LETTER"])
    assert len(letters) == len(poison)
    unmatched = list(letters)
    for topic, _, _, _, reason in poison:
        match = next((letter for letter in unmatched if letter[0] == topic and reason in letter[1]), None)
        assert match is not None, f"no dead letter from {topic} saying {reason!r} in {unmatched}"
        unmatched.remove(match)
