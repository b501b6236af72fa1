"""A generator run read back by an independent Avro consumer: mix, rate, faults, sessions, ids, reproducibility."""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import psycopg2
import pytest

from app.wire.headers import BAD_RECORD_HEADER
from db.throwaway import create_database, drop_database, dsn_for
from tests.support import PG_DSN, ReadRecord, http_get, read_back, run_worker, unique_topics
from tests.unit.generation.support import tolerance

pytestmark = pytest.mark.integration

#: 60 seconds at TARGET_EPS, as the generation issue asks.
EVENTS = int(os.environ.get("DATAGEN_READBACK_EVENTS", "30000"))
TARGET_EPS = 500.0
WEIGHTS = {"orders": 0.6, "customer_interactions": 0.3, "inventory_changes": 0.1}
P_LATE = 0.05
P_BAD = 0.02  # above the default 0.001 so that the share and every kind are measurable in a short run
SIZES = {"N_USERS": "2000", "N_PRODUCTS": "300", "N_WAREHOUSES": "4", "N_SUPPLIERS": "20"}


@dataclass
class Run:
    """What one generator run emitted, as a downstream consumer sees it, and where its reference data is."""

    records: list[ReadRecord]
    roles: dict[str, str]  # topic name -> role
    dsn: str
    stats: dict


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    name = create_database(PG_DSN, "gentest")
    yield dsn_for(PG_DSN, name)
    drop_database(PG_DSN, name)


def _run(tmp_path: Path, dsn: str, events: int, **extra: str) -> Run:
    tmp_path.mkdir(parents=True, exist_ok=True)
    topics = unique_topics("gen")
    settings = {
        **topics,
        **SIZES,
        "PG_DSN": dsn,
        "TARGET_EPS": str(TARGET_EPS),
        "MAX_EVENTS": str(events),
        "P_LATE_EVENT": str(P_LATE),
        "P_BAD_RECORD": str(P_BAD),
        "RANDOM_SEED": "11",
        "AGENTS_ENABLED": "false",  # these topics hold only what the generator emitted
        **extra,
    }
    roles = {
        topics["TOPIC_ORDERS"]: "orders",
        topics["TOPIC_CUSTOMER_INTERACTIONS"]: "customer_interactions",
        topics["TOPIC_INVENTORY_CHANGES"]: "inventory_changes",
    }
    with run_worker(tmp_path, settings) as worker:
        worker.wait_until_logged("MAX_EVENTS=", timeout=events / TARGET_EPS * 3 + 120)
        _, stats = http_get(worker.url + "/stats/")
        records = read_back(list(roles), events)
    return Run(records, roles, dsn, stats)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, database: str) -> Run:
    return _run(tmp_path_factory.mktemp("run"), database, EVENTS)


def _good(run: Run) -> list[ReadRecord]:
    return [record for record in run.records if BAD_RECORD_HEADER not in record.headers]


def test_every_event_arrives_and_the_stats_count_them(run: Run) -> None:
    assert len(run.records) == EVENTS
    assert run.stats["emitted"] == EVENTS
    assert run.stats["state"] == "finished"
    by_topic = Counter(record.topic for record in run.records)
    assert {topic: stats["emitted"] for topic, stats in run.stats["topics"].items()} == dict(by_topic)


def test_mix_follows_the_weights(run: Run) -> None:
    shares = Counter(run.roles[record.topic] for record in run.records)
    for role, weight in WEIGHTS.items():
        assert abs(shares[role] / EVENTS - weight) <= tolerance(weight, EVENTS), (role, shares)


def test_achieved_rate_is_the_target_times_the_diurnal_factor(run: Run) -> None:
    stamps = sorted(record.timestamp_ms for record in run.records)
    achieved = (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1000)
    target = TARGET_EPS * run.stats["diurnal_factor"]
    assert 0.4 <= run.stats["diurnal_factor"] <= 1.4
    assert abs(achieved / target - 1) <= 0.02, (achieved, target)


def test_late_share_and_delays(run: Run) -> None:
    decoded = [record for record in run.records if record.value is not None]
    delays = [record.timestamp_ms - round(record.value["event_time"].timestamp() * 1000) for record in decoded]
    late = [delay for delay in delays if delay != 0]
    assert all(1_000 <= delay <= 600_000 for delay in late), sorted(late)[:5]
    assert abs(len(late) / len(decoded) - P_LATE) <= tolerance(P_LATE, len(decoded))
    assert run.stats["late_events"] >= len(late)


def test_bad_records_are_counted_labelled_and_of_every_kind(run: Run) -> None:
    kinds = Counter(
        record.headers[BAD_RECORD_HEADER].decode() for record in run.records if BAD_RECORD_HEADER in record.headers
    )
    assert abs(sum(kinds.values()) / EVENTS - P_BAD) <= tolerance(P_BAD, EVENTS)
    assert set(kinds) == {"undecodable", "unknown_schema_id", "wrong_magic_byte", "truncated_body", "negative_quantity"}
    assert dict(kinds) == run.stats["bad_records"]
    for record in run.records:
        if BAD_RECORD_HEADER in record.headers and record.headers[BAD_RECORD_HEADER] != b"negative_quantity":
            assert record.value is None, record  # byte-level faults really fail to decode


def test_every_record_without_a_bad_header_decodes(run: Run) -> None:
    failing = [record for record in _good(run) if record.error is not None]
    assert failing == []


def test_semantic_faults_are_invalid_values(run: Run) -> None:
    for record in run.records:
        if record.headers.get(BAD_RECORD_HEADER) == b"negative_quantity":
            value = record.value
            assert value is not None
            role = run.roles[record.topic]
            if role == "orders":
                assert value["quantity"] < 0
            elif role == "customer_interactions":
                assert value["user_id"] < 0
            else:
                assert (value["delta"] > 0) == (value["change_type"] in ("SALE", "DAMAGE"))


def test_every_id_exists_in_postgres(run: Run) -> None:
    with psycopg2.connect(run.dsn) as conn, conn.cursor() as cursor:
        cursor.execute("select user_id from users")
        users = {row[0] for row in cursor.fetchall()}
        cursor.execute("select product_id, sku from products")
        skus = dict(cursor.fetchall())
        cursor.execute("select warehouse_id from warehouses")
        warehouses = {row[0] for row in cursor.fetchall()}
    for record in _good(run):
        value = record.value
        assert value is not None
        assert value["user_id"] in users if "user_id" in value else True
        if value.get("product_id") is not None:
            assert value["product_id"] in skus
        if "sku" in value:
            assert skus[value["product_id"]] == value["sku"]
        if "warehouse_id" in value:
            assert value["warehouse_id"] in warehouses


def test_orders_are_consistent_and_keyed_by_order_id(run: Run) -> None:
    orders = [record for record in _good(run) if run.roles[record.topic] == "orders"]
    assert orders
    for record in orders:
        value = record.value
        assert value is not None
        assert record.key == value["order_id"].encode()
        assert value["quantity"] >= 1
        assert value["unit_price"] > 0
        assert value["amount"] == value["quantity"] * value["unit_price"]
        assert value["currency"] == "USD"


def test_sessions_follow_the_funnel(run: Run) -> None:
    sessions: dict[str, list[dict]] = defaultdict(list)
    interactions = [record for record in _good(run) if run.roles[record.topic] == "customer_interactions"]
    for record in sorted(interactions, key=lambda record: (record.partition, record.offset)):
        assert record.value is not None
        assert record.key == record.value["session_id"].encode()
        sessions[record.value["session_id"]].append(record.value)
    assert len(sessions) > 10
    carts = 0
    for steps in sessions.values():
        assert len({step["user_id"] for step in steps}) == 1
        assert steps[0]["interaction_type"] == "PAGE_VIEW"
        assert steps[0]["product_id"] is None
        for before, step in pairwise(steps):
            if step["interaction_type"] == "SEARCH":
                assert step["search_term"]
            elif step["interaction_type"] == "PAGE_VIEW":
                assert before["interaction_type"] == "SEARCH"
                assert step["product_id"] is not None
            else:
                assert step["interaction_type"] == "CART_ADD"
                assert before["interaction_type"] == "PAGE_VIEW"
                assert before["product_id"] == step["product_id"]
                carts += 1
    assert carts > 0


def test_orders_from_sessions_follow_a_cart_add(run: Run) -> None:
    cart_adds = {
        (value["session_id"], value["user_id"], value["product_id"])
        for record in _good(run)
        if (value := record.value) is not None and value.get("interaction_type") == "CART_ADD"
    }
    from_sessions = [
        record.value
        for record in _good(run)
        if run.roles[record.topic] == "orders" and record.value is not None and record.value["session_id"]
    ]
    assert from_sessions
    for order in from_sessions:
        assert (order["session_id"], order["user_id"], order["product_id"]) in cart_adds


def _contents(run: Run) -> Counter[tuple]:
    """What must repeat with the same seed: every record without its timestamps (byte faults by kind only)."""
    seen: Counter[tuple] = Counter()
    for record in run.records:
        kind = record.headers.get(BAD_RECORD_HEADER)
        if record.value is None:
            seen[(run.roles[record.topic], record.key, kind)] += 1
        else:
            fields = tuple(sorted((k, v) for k, v in record.value.items() if k != "event_time"))
            seen[(run.roles[record.topic], record.key, kind, fields)] += 1
    return seen


def test_the_same_seed_gives_the_same_events(tmp_path: Path, database: str) -> None:
    first = _run(tmp_path / "a", database, 1500, P_UPDATE_PRICE="0")
    second = _run(tmp_path / "b", database, 1500, P_UPDATE_PRICE="0")
    other = _run(tmp_path / "c", database, 1500, P_UPDATE_PRICE="0", RANDOM_SEED="12")
    assert len(first.records) == 1500
    assert _contents(first) == _contents(second)
    assert _contents(first) != _contents(other)
