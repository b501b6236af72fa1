"""Both canonical modes on the real stack: payments, shipments, the stock and its fold, the dead letters."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg2
import pytest

from app.dead_letters import ERROR, SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC
from app.inventory import fold
from db.throwaway import create_database, drop_database, dsn_for
from tests.support import PG_DSN, ReadRecord, foldable_changes, http_get, read_back, run_worker, unique_topics

pytestmark = pytest.mark.integration

BAD_HEADER = "x-datagen-bad-record"
EVENTS = 8000
P_PAY, P_SHIP = 0.85, 0.75


def tolerance(p: float, n: int) -> float:
    """4.5 standard errors of a share p measured over n draws."""
    return 4.5 * math.sqrt(p * (1 - p) / n)


@dataclass
class Run:
    topics: dict[str, str]
    records: dict[str, list[ReadRecord]]  # role -> records
    stats: dict
    dsn: str


@pytest.fixture(scope="module", params=["kafka", "postgres"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    name = create_database(PG_DSN, "fulfiltest")
    topics = unique_topics("ful")
    settings = {
        **topics,
        "PG_DSN": dsn_for(PG_DSN, name),
        "N_USERS": "1000",
        "N_PRODUCTS": "150",
        "N_WAREHOUSES": "3",
        "N_SUPPLIERS": "10",
        "RANDOM_SEED": "21",
        "CANON_INVENTORY": request.param,
        "MIRROR_INVENTORY_TO_DB": str(request.param == "kafka").lower(),
        "TARGET_EPS": "500",
        "MAX_EVENTS": str(EVENTS),
        "P_BAD_RECORD": "0.01",
        "LEAD_TIME_SCALE": str(1 / 864000),  # a supplier's day lasts 0.1 s: backorders clear in the quiet period
    }
    roles = {
        "orders": topics["TOPIC_ORDERS"],
        "payments": topics["TOPIC_PAYMENTS"],
        "shipments": topics["TOPIC_SHIPMENTS"],
        "inventory_changes": topics["TOPIC_INVENTORY_CHANGES"],
        "dead_letter": topics["TOPIC_DEAD_LETTER"],
    }
    try:
        with run_worker(tmp_path_factory.mktemp("fulfil"), settings) as worker:
            worker.wait_until_logged("MAX_EVENTS=", timeout=180)
            stats = _quiet(worker)
        everything = read_back(list(roles.values()), 10**9, timeout=30)  # all there is after 30 s
        records = {role: [record for record in everything if record.topic == topic] for role, topic in roles.items()}
        yield Run(roles, records, stats, dsn_for(PG_DSN, name))
    finally:
        drop_database(PG_DSN, name)


def _quiet(worker: object, settle: float = 6.0, timeout: float = 90.0) -> dict:
    """Wait until the agents' counts stop moving and every scheduled return and restock has arrived."""
    deadline = time.monotonic() + timeout
    last: dict | None = None
    while time.monotonic() < deadline:
        _, stats = http_get(worker.url + "/stats/")  # type: ignore[attr-defined]
        agents = stats["agents"]
        settled = agents.get("scheduled", 0) == agents.get("scheduled arrived", 0) and "shipped" in agents
        if last is not None and agents == last["agents"] and settled:
            return stats
        last = stats
        time.sleep(settle)
    raise AssertionError(f"the agents never went quiet: {last}")


def _good_orders(run: Run) -> dict[str, dict]:
    return {
        record.value["order_id"]: record.value
        for record in run.records["orders"]
        if BAD_HEADER not in record.headers and record.value is not None
    }


def test_every_payment_and_shipment_has_its_order(run: Run) -> None:
    orders = _good_orders(run)
    payments = [record.value for record in run.records["payments"]]
    shipments = [record.value for record in run.records["shipments"]]
    assert payments
    assert shipments
    assert all(payment is not None and payment["order_id"] in orders for payment in payments)
    assert all(shipment is not None and shipment["order_id"] in orders for shipment in shipments)
    assert len({payment["order_id"] for payment in payments}) == len(payments)  # one payment per order
    assert len({shipment["order_id"] for shipment in shipments}) == len(shipments)


def test_payment_and_shipment_shares(run: Run) -> None:
    orders = len(_good_orders(run))
    payments = len(run.records["payments"])
    shipments = len(run.records["shipments"])
    assert abs(payments / orders - P_PAY) <= tolerance(P_PAY, orders), (payments, orders)
    assert abs(shipments / orders - P_SHIP) <= tolerance(P_SHIP, orders), (shipments, orders, run.stats["agents"])


def test_shipments_only_for_accepted_payments(run: Run) -> None:
    accepted = {record.value["order_id"] for record in run.records["payments"] if record.value["status"] != "DECLINED"}
    assert all(record.value["order_id"] in accepted for record in run.records["shipments"])


def _folded(run: Run) -> list[dict]:
    return foldable_changes(run.records["inventory_changes"])


def test_stock_never_goes_negative_in_the_fold_of_the_topic(run: Run) -> None:
    changes = _folded(run)
    states = fold(changes)
    assert states
    for state in states.values():
        for warehouse_id in state.warehouses:
            assert state.stock(warehouse_id).on_hand >= 0
    sales = Counter(change["source_id"] for change in changes if change["change_type"] == "SALE")
    assert sum(sales.values()) == len(run.records["shipments"])  # one SALE per shipped order
    assert set(sales.values()) == {1}


def test_dead_letters_are_exactly_the_bad_records_of_the_consumed_topics(run: Run) -> None:
    bad = {
        (record.topic, record.partition, record.offset)
        for role in ("orders", "inventory_changes")
        for record in run.records[role]
        if BAD_HEADER in record.headers
    }
    letters = run.records["dead_letter"]
    sources = {
        (
            letter.headers[SOURCE_TOPIC].decode(),
            int(letter.headers[SOURCE_PARTITION]),
            int(letter.headers[SOURCE_OFFSET]),
        )
        for letter in letters
    }
    assert bad
    assert sources == bad
    assert len(letters) == len(bad)
    assert all(letter.headers[ERROR] for letter in letters)
    assert all(BAD_HEADER in letter.headers for letter in letters)  # the original headers are kept
    assert run.stats["agents"]["dead letters"] == len(bad)


def test_postgres_stock_equals_the_fold_and_its_two_tables_agree(run: Run) -> None:
    """kafka mode: the mirror of the table; postgres mode: the canonical rows themselves."""
    states = fold(_folded(run))
    with psycopg2.connect(run.dsn) as conn, conn.cursor() as cursor:
        cursor.execute("select product_id, warehouse_id, on_hand from warehouse_inventory")
        mirrored = {(product, warehouse): on_hand for product, warehouse, on_hand in cursor.fetchall()}
        cursor.execute(
            "select count(*) from inventory i join (select product_id, sum(on_hand) as s from warehouse_inventory"
            " group by product_id) w using (product_id) where i.on_hand <> w.s"
        )
        assert cursor.fetchone() == (0,)
    compared = 0
    for state in states.values():
        if state.clamped_units:  # a clamp makes the topic's order matter, and the agent folds its SALEs early
            continue
        for warehouse_id in state.warehouses:
            assert mirrored[(state.product_id, warehouse_id)] == state.stock(warehouse_id).on_hand, state.sku
            compared += 1
    assert compared > 0.9 * len(mirrored)
