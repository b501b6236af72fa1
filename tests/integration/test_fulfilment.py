"""Both canonical modes on the real stack, with a worker killed (SIGKILL) at random moments under load.

The worker generates at 500 events/s and is killed KILLS times, each at a random moment 2-8 s after it started
generating, and restarted on the same data directory; then it is restarted once more without generation and left
until quiet. What Kafka and Postgres hold is then read to the high watermarks and compared with what must be
there: every order decided (payments recomputed from the pure functions), a shipment per shipped order and one
SALE per shipment, duplicates only as byte-identical copies, the stock (table, listing, mirror, Postgres) equal
to the sum of the inventory-changes topic's deltas with nothing clamped, every bad record dead-lettered, and
nothing left waiting or unsent.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg2
import pytest

from app.derivation import DerivationConfig, Stage, decide_payment, rng_for
from app.inventory import fold
from app.settings import load_settings
from app.wire.headers import (
    BAD_RECORD_HEADER,
    DLQ_ERROR_HEADER,
    DLQ_SOURCE_OFFSET_HEADER,
    DLQ_SOURCE_PARTITION_HEADER,
    DLQ_SOURCE_TOPIC_HEADER,
)
from app.wire.roles import requests_topic
from db.throwaway import create_database, drop_database, dsn_for
from faults.checks import IDS, distinct, distinct_changes, good_orders, ledger_sums, millis
from tests.stock_support import (
    changelog_values,
    differences,
    high_watermarks,
    listed_on_hand,
    postgres_on_hand,
    quiet,
    totals_disagreeing,
)
from tests.support import PG_DSN, ReadRecord, read_back, run_worker, unique_topics
from tests.unit.generation.support import tolerance

pytestmark = pytest.mark.integration

KILLS = int(os.environ.get("FULFILMENT_KILLS") or 2)  # tests/integration/test_faults.py kills two workers too
RATE = 500
P_PAY, P_SHIP = 0.85, 0.75
STARTED = "held here; started"  # the shards are generating (not only the catalogue ready)


@dataclass
class Run:
    mode: str
    settings: dict[str, str]
    topics: dict[str, str]
    records: dict[str, list[ReadRecord]]  # role -> records, to the high watermarks
    stats: dict
    dsn: str
    listing: list[dict]  # GET /inventory/, every page, once quiet
    postgres: dict[tuple[int, int], int]  # warehouse_inventory on hand after the last worker stopped
    outbox: int  # records left in the outbox after the last worker stopped


@pytest.fixture(scope="module", params=["kafka", "postgres"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    mode = request.param
    name = create_database(PG_DSN, "fulfiltest")
    dsn = dsn_for(PG_DSN, name)
    topics = unique_topics("ful")
    base = tmp_path_factory.mktemp(f"fulfil-{mode}")
    settings = {
        **topics,
        "PG_DSN": dsn,
        "N_USERS": "1000",
        "N_PRODUCTS": "150",
        "N_WAREHOUSES": "3",
        "N_SUPPLIERS": "10",
        "CANON_INVENTORY": mode,
        "MIRROR_INVENTORY_TO_DB": str(mode == "kafka").lower(),
        "TARGET_EPS": str(RATE),
        "DIURNAL_ENABLED": "false",
        "P_BAD_RECORD": "0.01",
        "LEAD_TIME_SCALE": str(1 / 864000),  # a supplier's day lasts 0.1 s: restocks arrive in the quiet period
        "BACKORDER_TIMEOUT_DAYS": "900",  # 90 s: backorders ship when restocks arrive, none is cancelled
        "DATA_DIR": str(base / "faust-data"),
    }
    roles = {
        "orders": topics["TOPIC_ORDERS"],
        "payments": topics["TOPIC_PAYMENTS"],
        "shipments": topics["TOPIC_SHIPMENTS"],
        "inventory_changes": topics["TOPIC_INVENTORY_CHANGES"],
        "dead_letter": topics["TOPIC_DEAD_LETTER"],
        "requests": requests_topic(topics["APP_ID"]),
    }
    rng = random.Random(f"kills-{mode}")
    try:
        for kill in range(KILLS):
            (base / f"run{kill}").mkdir()
            with run_worker(base / f"run{kill}", settings) as worker:
                worker.wait_until_logged(STARTED, timeout=180)
                time.sleep(rng.uniform(2.0, 8.0))
                worker.process.send_signal(signal.SIGKILL)
                worker.process.wait()
        (base / "last").mkdir()
        with run_worker(base / "last", {**settings, "GENERATION_ENABLED": "false"}) as worker:
            worker.wait_until_logged("GENERATION_ENABLED=false", timeout=180)
            stats, items = quiet(worker, timeout=240)
            worker.process.send_signal(signal.SIGTERM)
            worker.process.wait(timeout=60)
        postgres = postgres_on_hand(dsn)
        expected = sum(sum(high_watermarks(topic).values()) for topic in roles.values())
        everything = read_back(list(roles.values()), expected, timeout=180)
        assert len(everything) == expected  # to the high watermarks: an extra record would show
        records = {role: [record for record in everything if record.topic == topic] for role, topic in roles.items()}
        yield Run(mode, settings, roles, records, stats, dsn, items, postgres, _outbox(mode, dsn, topics["APP_ID"]))
    finally:
        drop_database(PG_DSN, name)


def _outbox(mode: str, dsn: str, app_id: str) -> int:
    if mode == "postgres":
        with psycopg2.connect(dsn) as conn, conn.cursor() as cursor:
            cursor.execute("select count(*) from stock_outbox")
            return int(cursor.fetchone()[0])
    return sum(len(records) for records in changelog_values(app_id, "outbox").values())  # type: ignore[arg-type]


def test_the_worker_was_killed_and_nothing_is_left_waiting_or_unsent(run: Run) -> None:
    assert KILLS >= 1
    assert run.stats["ledger"]["backlog"] == 0
    assert run.stats["ledger"]["scheduled"] == 0
    assert run.outbox == 0
    assert run.stats["agents"].get("backorders cancelled", 0) == 0


def test_every_order_has_exactly_its_payment(run: Run) -> None:
    """The payments on the topic are those the pure functions decide for the orders on the topic: none lost,
    none extra, none decided differently."""
    settings = load_settings(run.settings)
    config = DerivationConfig.from_settings(settings, lead_time_scale=settings.lead_time_scale)
    expected = {}
    for order_id, order in good_orders(run.records["orders"]).items():
        payment = decide_payment(millis(order), config, rng_for(config.seed, order_id, Stage.PAYMENT))
        if payment is not None:
            expected[payment["payment_id"]] = (order_id, payment["status"], payment["amount"], payment["method"])
    found = {
        payment_id: (payment["order_id"], payment["status"], payment["amount"], payment["method"])
        for payment_id, payment in distinct(run.records["payments"], "payments").items()
    }
    assert expected
    assert found == expected


def test_copies_of_a_record_are_byte_identical(run: Run) -> None:
    for role, field in IDS.items():
        first: dict[str, tuple[bytes | None, bytes]] = {}
        for record in run.records[role]:
            if record.value is None:
                continue
            key = record.value[field]
            assert first.setdefault(key, (record.key, record.raw)) == (record.key, record.raw), (role, key)


def test_a_shipment_for_each_shipped_order_and_one_sale_each(run: Run) -> None:
    orders = good_orders(run.records["orders"])
    payments = distinct(run.records["payments"], "payments")
    accepted = {payment["order_id"] for payment in payments.values() if payment["status"] != "DECLINED"}
    shipments = distinct(run.records["shipments"], "shipments")
    shipped = {shipment["order_id"] for shipment in shipments.values()}
    assert len(shipped) == len(shipments)  # one shipment per order
    assert shipped <= accepted
    sales: dict[str, list[dict]] = defaultdict(list)
    for change in distinct_changes(run.records["inventory_changes"]):
        if change["change_type"] == "SALE":
            sales[change["source_id"]].append(change)
    assert set(sales) == shipped
    assert {len(found) for found in sales.values()} == {1}
    for shipment in shipments.values():
        sale = sales[shipment["order_id"]][0]
        assert sale["warehouse_id"] == shipment["warehouse_id"]
        assert -sale["delta"] == orders[shipment["order_id"]]["quantity"]
    share = len(shipments) / len(orders)
    assert abs(share - P_SHIP) <= tolerance(P_SHIP, len(orders)), (len(shipments), len(orders), run.stats["agents"])


def test_the_topic_is_a_faithful_ledger_never_negative_and_nothing_clamped(run: Run) -> None:
    sums = ledger_sums(distinct_changes(run.records["inventory_changes"]))
    assert sums
    assert min(sums.values()) >= 0
    states = fold(distinct_changes(run.records["inventory_changes"]))
    assert sum(state.clamped_units for state in states.values()) == 0
    folded = {(s.product_id, w): stock.on_hand for s in states.values() for w, stock in s.warehouses.items()}
    assert differences(folded, sums) == {}


def test_the_stock_equals_the_ledger_in_the_listing_and_in_postgres(run: Run) -> None:
    sums = ledger_sums(distinct_changes(run.records["inventory_changes"]))
    assert differences(listed_on_hand(run.listing), sums, default=0) == {}
    assert differences(run.postgres, sums, default=0) == {}  # the mirror (kafka) or the rows themselves
    assert totals_disagreeing(run.dsn) == []
    if run.mode == "kafka":  # the table a worker recovering from nothing rebuilds
        changelog = {
            (int(key), int(w)): row[0]
            for key, value in changelog_values(run.settings["APP_ID"], "stock-ledger").items()
            for w, row in value["w"].items()  # type: ignore[index]
        }
        assert differences(changelog, sums, default=0) == {}


def test_every_bad_record_is_dead_lettered(run: Run) -> None:
    bad = {
        (record.topic, record.partition, record.offset)
        for role in ("orders", "requests")
        for record in run.records[role]
        if BAD_RECORD_HEADER in record.headers
    }
    letters = run.records["dead_letter"]
    sources = {
        (
            letter.headers[DLQ_SOURCE_TOPIC_HEADER].decode(),
            int(letter.headers[DLQ_SOURCE_PARTITION_HEADER]),
            int(letter.headers[DLQ_SOURCE_OFFSET_HEADER]),
        )
        for letter in letters
    }
    assert bad
    assert sources == bad  # a redelivered bad record may be dead-lettered twice, with the same source
    assert all(letter.headers[DLQ_ERROR_HEADER] for letter in letters)
    assert all(BAD_RECORD_HEADER in letter.headers for letter in letters)


def test_no_bad_record_reaches_the_ledger(run: Run) -> None:
    assert not [record for record in run.records["inventory_changes"] if record.value is None]
    assert not [record for record in run.records["inventory_changes"] if BAD_RECORD_HEADER in record.headers]
