"""Helpers of the stock tests on the real stack: the views read page by page, the stock changelog, Postgres."""

from __future__ import annotations

import json
import time
import uuid

import psycopg2
from confluent_kafka import Consumer, TopicPartition

from tests.support import KAFKA_BOOTSTRAP, Worker, http_get

#: (product_id, warehouse_id) -> on_hand
OnHand = dict[tuple[int, int], int]


def listing(worker: Worker, size: int = 7) -> list[dict]:
    """Every item of GET /inventory/, read page by page until an empty one."""
    items: list[dict] = []
    for page in range(1, 10_000):
        status, body = http_get(f"{worker.url}/inventory/?page={page}&size={size}")
        assert status == 200, body
        assert (body["page"], body["size"]) == (page, size)
        if not body["items"]:
            assert len(items) == body["total"]
            return items
        items += body["items"]
    raise AssertionError("GET /inventory/ never ran out of pages")


def listed_on_hand(items: list[dict]) -> OnHand:
    """On hand per (product, warehouse) of the items of GET /inventory/."""
    return {
        (item["product_id"], warehouse["warehouse_id"]): warehouse["on_hand"]
        for item in items
        for warehouse in item["warehouses"]
    }


def settled(stats: dict) -> bool:
    """No order waits for stock and nothing is scheduled, as the worker's ``/stats/`` shows its ledger."""
    ledger = stats.get("ledger") or {}
    return bool(ledger) and ledger.get("backlog", 1) == 0 and ledger.get("scheduled", 1) == 0


def quiet(worker: Worker, settle: float = 5.0, timeout: float = 150.0) -> tuple[dict, list[dict]]:
    """Wait until neither the agents' counts nor the inventory move, no order waits and nothing is scheduled."""
    deadline = time.monotonic() + timeout
    last: tuple[dict, list[dict]] | None = None
    while time.monotonic() < deadline:
        _, stats = http_get(worker.url + "/stats/")
        now = (stats["agents"], listing(worker))
        if last is not None and now == last and settled(stats):
            return stats, now[1]
        last = now
        time.sleep(settle)
    raise AssertionError(f"the inventory never went quiet: {last and last[0]}")


def high_watermarks(topic: str) -> dict[int, int]:
    """Each partition's high watermark: how many records the topic has had."""
    consumer = Consumer({"bootstrap.servers": KAFKA_BOOTSTRAP, "group.id": f"watermarks-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
    finally:
        consumer.close()


def changelog_states(app_id: str, timeout: float = 60.0) -> dict[int, dict]:
    """The stock table as a worker recovering from nothing rebuilds it: the last value of each key of the
    ``<app_id>-stock-ledger-changelog`` topic, read up to its high watermarks, as a stored StockState, by id."""
    from app.inventory.stockroom import ProductStock

    return {
        int(key): ProductStock.from_json(value).to_state().to_dict()
        for key, value in changelog_values(app_id, "stock-ledger", timeout).items()
    }


def changelog_values(app_id: str, table: str, timeout: float = 60.0) -> dict[str, object]:
    """The last value of each key of the table's changelog, read up to its high watermarks; deleted keys left out."""
    topic = f"{app_id}-{table}-changelog"
    ends = high_watermarks(topic)
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA_BOOTSTRAP,
            "group.id": f"changelog-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, partition, 0) for partition, end in ends.items() if end > 0])
    values: dict[str, object] = {}
    done = {partition for partition, end in ends.items() if end == 0}
    deadline = time.monotonic() + timeout
    try:
        while len(done) < len(ends):
            assert time.monotonic() < deadline, f"{topic}: not read to its end in {timeout} s"
            for message in consumer.consume(num_messages=5000, timeout=1.0):
                assert not message.error(), message.error()
                key = str(json.loads(message.key()))
                if message.value() is None:
                    values.pop(key, None)
                else:
                    values[key] = json.loads(message.value())
                if message.offset() + 1 >= ends[message.partition()]:
                    done.add(message.partition())
    finally:
        consumer.close()
    return values


def changelog_on_hand(states: dict[int, dict]) -> OnHand:
    """On hand per (product, warehouse) of stored stock states."""
    return {
        (int(state["product_id"]), int(stock["warehouse_id"])): int(stock["on_hand"])
        for state in states.values()
        for stock in state["warehouses"]
    }


def postgres_on_hand(dsn: str) -> OnHand:
    """On hand per (product, warehouse) of every ``warehouse_inventory`` row."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cursor:
        cursor.execute("select product_id, warehouse_id, on_hand from warehouse_inventory")
        return {(product, warehouse): on_hand for product, warehouse, on_hand in cursor.fetchall()}


def postgres_stock(dsn: str) -> list[tuple]:
    """Every ``warehouse_inventory`` and ``inventory`` row's quantities and update time, in order."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cursor:
        cursor.execute(
            "select 'w', product_id, warehouse_id, on_hand, reserved, updated_at from warehouse_inventory"
            " union all select 'i', product_id, 0, on_hand, reserved, updated_at from inventory order by 1, 2, 3"
        )
        return cursor.fetchall()


def totals_disagreeing(dsn: str) -> list[tuple]:
    """Products whose ``inventory`` row is not the sum of their ``warehouse_inventory`` rows."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cursor:
        cursor.execute(
            "select i.product_id, i.on_hand, w.on_hand, i.reserved, w.reserved from inventory i"
            " join (select product_id, sum(on_hand) as on_hand, sum(reserved) as reserved"
            "       from warehouse_inventory group by product_id) w using (product_id)"
            " where i.on_hand <> w.on_hand or i.reserved <> w.reserved"
        )
        return cursor.fetchall()


def differences(left: OnHand, right: OnHand, default: int | None = None) -> dict:
    """The (product, warehouse) pairs where ``left`` and ``right`` differ, with both values; with ``default``,
    a pair missing on one side counts as that value."""
    keys = set(left) | set(right)
    return {
        key: (left.get(key, default), right.get(key, default))
        for key in sorted(keys)
        if left.get(key, default) != right.get(key, default)
    }
