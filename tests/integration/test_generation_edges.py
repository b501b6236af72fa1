"""Generation at its edges: a registry outage, Kafka pushing back, and price changes reaching Postgres."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from db.throwaway import create_database, drop_database, dsn_for
from tests.support import PG_DSN, TcpProxy, Worker, http_get, read_back, run_worker, unique_topics

pytestmark = pytest.mark.integration

SMALL = {
    "AGENTS_ENABLED": "false",
    "N_USERS": "500",
    "N_PRODUCTS": "100",
    "N_WAREHOUSES": "3",
    "N_SUPPLIERS": "10",
    "RANDOM_SEED": "5",
}


@pytest.fixture
def database() -> Iterator[str]:
    name = create_database(PG_DSN, "edgetest")
    yield dsn_for(PG_DSN, name)
    drop_database(PG_DSN, name)


def _emitted(worker: Worker) -> int:
    status, stats = http_get(worker.url + "/stats/")
    assert status == 200
    return int(stats["emitted"])


def _wait_for_emitted(worker: Worker, at_least: int, timeout: float = 90.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        emitted = _emitted(worker)
        if emitted >= at_least:
            return emitted
        time.sleep(0.5)
    raise AssertionError(f"fewer than {at_least} events emitted in {timeout} s:\n{worker.log()[-3000:]}")


def test_registry_outage_holds_generation_until_registered_then_it_goes_on(tmp_path: Path, database: str) -> None:
    proxy = TcpProxy(upstream_port=8081)
    topics = unique_topics("outage")
    settings = {
        **topics,
        **SMALL,
        "PG_DSN": database,
        "SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{proxy.port}/apis/ccompat/v7",
        "TARGET_EPS": "300",
        "P_BAD_RECORD": "0",
        "MAX_EVENTS": "3000",
    }
    with run_worker(tmp_path, settings) as worker:
        worker.wait_until("/health", 503)
        worker.wait_until_logged("registering schemas")
        time.sleep(3)
        assert _emitted(worker) == 0  # nothing goes out that a Confluent deserializer could not read
        assert worker.process.poll() is None

        proxy.open()
        before_outage = _wait_for_emitted(worker, 300)
        proxy.close()
        _wait_for_emitted(worker, before_outage + 600)  # the registered ids keep serving while it is down
        worker.wait_until_logged("MAX_EVENTS=", timeout=60)
    proxy.close()

    roles = [topics["TOPIC_ORDERS"], topics["TOPIC_CUSTOMER_INTERACTIONS"], topics["TOPIC_INVENTORY_CHANGES"]]
    records = read_back(roles, 3000)
    assert len(records) == 3000
    assert [record for record in records if record.error is not None] == []


def test_kafka_pushing_back_makes_generation_wait_and_drops_nothing(tmp_path: Path, database: str) -> None:
    topics = unique_topics("pushback")
    settings = {
        **topics,
        **SMALL,
        "PG_DSN": database,
        "TARGET_EPS": "20000",
        "DIURNAL_ENABLED": "false",
        "PRODUCER_QUEUE_MAX": "20",
        "MAX_EVENTS": "5000",
    }
    with run_worker(tmp_path, settings) as worker:
        worker.wait_until_logged("MAX_EVENTS=", timeout=120)
        _, stats = http_get(worker.url + "/stats/")
        assert stats["backpressure_waits"] > 0
        assert "Kafka is pushing back" in worker.log()
    roles = [topics["TOPIC_ORDERS"], topics["TOPIC_CUSTOMER_INTERACTIONS"], topics["TOPIC_INVENTORY_CHANGES"]]
    records = read_back(roles, 5000)
    assert len(records) == 5000
    assert len({(record.topic, record.partition, record.offset) for record in records}) == 5000


def test_price_changes_reach_postgres_and_later_orders(tmp_path: Path, database: str) -> None:
    topics = unique_topics("prices")
    settings = {
        **topics,
        **SMALL,
        "PG_DSN": database,
        "TARGET_EPS": "1000",
        "P_UPDATE_PRICE": "0.2",
        "P_BAD_RECORD": "0",
        "MAX_EVENTS": "4000",
    }
    with run_worker(tmp_path, settings) as worker:
        worker.wait_until_logged("MAX_EVENTS=", timeout=120)
        _, stats = http_get(worker.url + "/stats/")
    # The worker has stopped, and flushed its last price changes on the way out.
    with psycopg2.connect(database) as conn, conn.cursor() as cursor:
        cursor.execute("select count(*) from products where price_cents < cost_cents")
        assert cursor.fetchone() == (0,)
        cursor.execute("select max(created_at) from products")
        (seeded_at,) = cursor.fetchone()
        cursor.execute("select product_id, price_cents, updated_at > %s from products", (seeded_at,))
        rows = cursor.fetchall()
    price = {product: cents for product, cents, _ in rows}
    changed = {product for product, _, moved in rows if moved}
    assert changed, "P_UPDATE_PRICE=0.2 changed no price in Postgres"

    orders = read_back([topics["TOPIC_ORDERS"]], stats["topics"][topics["TOPIC_ORDERS"]]["emitted"])
    prices_seen: dict[int, list[int]] = {}
    for record in sorted(orders, key=lambda record: record.timestamp_ms):
        assert record.value is not None
        prices_seen.setdefault(record.value["product_id"], []).append(record.value["unit_price"])
    for product, seen in prices_seen.items():
        if product not in changed:
            assert set(seen) == {price[product]}, (product, seen, price[product])
    assert any(len(set(prices_seen.get(product, []))) > 1 for product in changed), "no order saw a new price"
