"""Seeding the reference tables into a real Postgres: content, constraints, idempotency, restarts, races."""

from __future__ import annotations

import asyncio
import os
import random
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from decimal import Decimal
from typing import Any

import psycopg2
import pytest

from app.exceptions import SettingsError
from app.reference import Sizes, generate_reference_data
from app.settings import Settings, load_settings
from db.checksum import REFERENCE_TABLES, content_checksum
from db.exceptions import SeedError
from db.schema import apply_schema, schema_sha256
from db.seed import ProgressPrinter, SeedResult, ensure_seeded, seed_command, seed_database
from tests.support import ROOT

pytestmark = pytest.mark.integration

SettingsFactory = Callable[..., Settings]


@contextmanager
def _cursor(dsn: str) -> Iterator[Any]:
    """A cursor in a transaction that commits on success."""
    with closing(psycopg2.connect(dsn)) as conn, conn, conn.cursor() as cursor:
        yield cursor


def _rows(dsn: str, query: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with _cursor(dsn) as cursor:
        cursor.execute(query, params)
        return list(cursor.fetchall())


def _dsn(settings: Settings) -> str:
    return settings.pg_dsn.get_secret_value()


def _checksum(settings: Settings) -> str:
    with _cursor(_dsn(settings)) as cursor:
        return content_checksum(cursor)


def _row_versions(dsn: str) -> dict[str, list[tuple[str, str]]]:
    """Where each row lives and which transaction wrote it: any write to a row changes both."""
    tables = [*REFERENCE_TABLES, "reference_seed"]
    return {table: _rows(dsn, f"select ctid::text, xmin::text from {table} order by ctid") for table in tables}


def _comment_versions(dsn: str) -> list[tuple[Any, ...]]:
    """The transactions that last wrote the column comments: re-applying the DDL would rewrite them."""
    return _rows(
        dsn,
        "select objoid::regclass::text, objsubid, xmin::text from pg_description "
        "where objoid = any(%s::regclass[]) order by 1, 2",
        (list(REFERENCE_TABLES),),
    )


def _schema(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """What information_schema and the catalogue say about the reference tables."""
    tables = (list(REFERENCE_TABLES),)
    return {
        "columns": _rows(
            dsn,
            "select table_name, column_name, ordinal_position, data_type, is_nullable, column_default, "
            "col_description(format('%%I', table_name)::regclass, ordinal_position) "
            "from information_schema.columns where table_name = any(%s) order by 1, 3",
            tables,
        ),
        "constraints": _rows(
            dsn,
            "select table_name, constraint_name, constraint_type from information_schema.table_constraints "
            "where table_name = any(%s) and constraint_name not like '%%not_null' order by 1, 2",
            tables,
        ),
        "checks": _rows(
            dsn,
            "select c.constraint_name, c.check_clause from information_schema.check_constraints c "
            "join information_schema.table_constraints t using (constraint_schema, constraint_name) "
            "where t.table_name = any(%s) and c.constraint_name not like '%%not_null' order by 1",
            tables,
        ),
        "foreign_keys": _rows(
            dsn,
            "select constraint_name, unique_constraint_name, update_rule, delete_rule "
            "from information_schema.referential_constraints order by 1",
        ),
        "indexes": _rows(
            dsn, "select indexname, indexdef from pg_indexes where tablename = any(%s) order by 1", tables
        ),
        "triggers": _rows(
            dsn,
            "select tgname, pg_get_triggerdef(oid) from pg_trigger "
            "where tgrelid = any(%s::regclass[]) and not tgisinternal order by 1",
            tables,
        ),
    }


# Sizes and content ---------------------------------------------------------------------------------------


def test_seed_writes_the_sizes_asked_for_with_dense_ids(seed_settings_factory: SettingsFactory) -> None:
    settings = seed_settings_factory()
    result = seed_database(settings)

    assert result.seeded
    dsn = _dsn(settings)
    for table, key, size in (("users", "user_id", 300), ("products", "product_id", 80)):
        assert _rows(dsn, f"select count(*), min({key}), max({key}) from {table}") == [(size, 1, size)]
    counts = {table: _rows(dsn, f"select count(*) from {table}")[0][0] for table in REFERENCE_TABLES}
    assert counts["warehouses"] == 3
    assert counts["suppliers"] == 12
    assert counts["customer_segments"] == 5
    assert counts["inventory"] == 80
    assert counts["warehouse_inventory"] == 3 * 80
    assert 80 <= counts["product_suppliers"] <= 3 * 80
    assert dict(result.rows) == counts
    assert _rows(dsn, "select count(distinct region) from warehouses") == [(3,)]


def test_rows_in_the_database_are_the_generated_rows(seed_settings_factory: SettingsFactory) -> None:
    """Quotes, commas, accents, floats and dates survive COPY unchanged."""
    settings = seed_settings_factory()
    seed_database(settings)
    expected = generate_reference_data(Sizes(300, 80, 3, 12), random.Random(7))

    for table in expected.tables():
        stored = _rows(_dsn(settings), f"select {', '.join(table.columns)} from {table.name} order by 1, 2")
        normalised = [tuple(float(v) if isinstance(v, Decimal) else v for v in row) for row in stored]
        assert normalised == sorted(tuple(row) for row in table.rows), table.name
    stamps = _rows(_dsn(settings), "select distinct created_at = updated_at, created_at from users")
    assert [(same, stamp.isoformat()) for same, stamp in stamps] == [(True, "2025-01-01T00:00:00+00:00")]


def test_inventory_is_the_sum_of_the_warehouse_inventory(seed_settings_factory: SettingsFactory) -> None:
    settings = seed_settings_factory()
    seed_database(settings)

    disagreeing = _rows(
        _dsn(settings),
        "select coalesce(i.sku, w.sku) from inventory i full join ("
        "  select p.sku, sum(wi.on_hand) as on_hand, sum(wi.reserved) as reserved "
        "  from warehouse_inventory wi join products p using (product_id) group by p.sku"
        ") w on w.sku = i.sku "
        "where i.on_hand is distinct from w.on_hand or i.reserved is distinct from w.reserved",
    )
    assert disagreeing == []


def test_each_user_is_in_the_first_segment_whose_rule_takes_them(seed_settings_factory: SettingsFactory) -> None:
    settings = seed_settings_factory(N_USERS="2000")
    seed_database(settings)

    misplaced = _rows(
        _dsn(settings),
        "with u as ("
        "  select user_id, segment_id, date '2025-01-01' - signup_date as tenure,"
        "    (row_number() over (order by popularity desc, user_id) - 1) * 10000 / count(*) over () as position "
        "  from users)"
        "select u.user_id from u cross join lateral ("
        "  select s.segment_id from customer_segments s"
        "  where (s.min_tenure_days is null or u.tenure >= s.min_tenure_days)"
        "    and (s.max_tenure_days is null or u.tenure < s.max_tenure_days)"
        "    and (s.min_activity_bp is null or u.position >= s.min_activity_bp)"
        "    and (s.max_activity_bp is null or u.position < s.max_activity_bp)"
        "  order by s.priority limit 1) rule "
        "where rule.segment_id <> u.segment_id",
    )
    assert misplaced == []
    assert len(_rows(_dsn(settings), "select distinct segment_id from users")) == 5


# Schema ---------------------------------------------------------------------------------------------------


def test_constraints_and_comments_are_visible_in_information_schema(seed_settings_factory: SettingsFactory) -> None:
    settings = seed_settings_factory()
    seed_database(settings)
    dsn = _dsn(settings)

    references = _rows(
        dsn,
        "select distinct child.table_name, parent.table_name "
        "from information_schema.referential_constraints r "
        "join information_schema.table_constraints child using (constraint_schema, constraint_name) "
        "join information_schema.constraint_column_usage parent using (constraint_schema, constraint_name)",
    )
    assert set(references) == {
        ("users", "customer_segments"),
        ("product_suppliers", "products"),
        ("product_suppliers", "suppliers"),
        ("inventory", "products"),
        ("warehouse_inventory", "warehouses"),
        ("warehouse_inventory", "products"),
    }
    checks = dict(_schema(dsn)["checks"])
    for name in (
        "products_price_positive",
        "products_cost_positive",
        "products_price_covers_cost",
        "product_suppliers_unit_cost_positive",
        "product_suppliers_lead_time_positive",
        "inventory_on_hand_nonnegative",
        "inventory_reserved_nonnegative",
        "warehouse_inventory_on_hand_nonnegative",
        "warehouse_inventory_reserved_nonnegative",
        "warehouse_inventory_reorder_qty_positive",
    ):
        assert name in checks
    assert "price_cents >= cost_cents" in checks["products_price_covers_cost"]
    uncommented = [(table, column) for table, column, *_, comment in _schema(dsn)["columns"] if not comment]
    assert uncommented == []


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("update products set cost_cents = price_cents + 1 where product_id = 1", psycopg2.errors.CheckViolation),
        ("update products set price_cents = 0 where product_id = 1", psycopg2.errors.CheckViolation),
        ("update warehouse_inventory set on_hand = -1 where product_id = 1", psycopg2.errors.CheckViolation),
        ("update inventory set reserved = -1 where product_id = 1", psycopg2.errors.CheckViolation),
        ("update product_suppliers set lead_time_days = 0 where product_id = 1", psycopg2.errors.CheckViolation),
        ("insert into product_suppliers (product_id, supplier_id, unit_cost_cents, lead_time_days) "
         "values (1, 999, 100, 5)", psycopg2.errors.ForeignKeyViolation),
        ("update users set segment_id = 99 where user_id = 1", psycopg2.errors.ForeignKeyViolation),
        ("update users set email = (select email from users where user_id = 2) where user_id = 1",
         psycopg2.errors.UniqueViolation),
    ],
)
def test_constraints_refuse_bad_rows(
    seed_settings_factory: SettingsFactory, statement: str, error: type[Exception]
) -> None:
    settings = seed_settings_factory(N_USERS="5", N_PRODUCTS="3", N_SUPPLIERS="2")
    seed_database(settings)
    with pytest.raises(error), _cursor(_dsn(settings)) as cursor:
        cursor.execute(statement)


def test_applying_the_schema_twice_or_seeding_changes_nothing_in_it(
    seed_settings_factory: SettingsFactory,
) -> None:
    settings = seed_settings_factory()
    dsn = _dsn(settings)
    with _cursor(dsn) as cursor:
        apply_schema(cursor)
    first = _schema(dsn)
    with _cursor(dsn) as cursor:
        apply_schema(cursor)
    assert _schema(dsn) == first
    seed_database(settings)  # drops and re-adds the foreign keys around its COPYs
    assert _schema(dsn) == first


def test_updated_at_follows_updates_unless_the_update_sets_it(seed_settings_factory: SettingsFactory) -> None:
    settings = seed_settings_factory()
    seed_database(settings)
    dsn = _dsn(settings)
    with _cursor(dsn) as cursor:
        cursor.execute("update inventory set on_hand = on_hand + 1 where product_id = 1")
        cursor.execute("update inventory set on_hand = 5, updated_at = '2030-01-01Z' where product_id = 2")
    stamps = dict(_rows(dsn, "select product_id, updated_at::date::text from inventory where product_id < 4"))
    assert stamps[1] > "2025-01-01"
    assert stamps[2] == "2030-01-01"
    assert stamps[3] == "2025-01-01"


# Idempotency and restarts ---------------------------------------------------------------------------------


def test_a_second_seed_writes_nothing(seed_settings_factory: SettingsFactory) -> None:
    settings = seed_settings_factory()
    first = seed_database(settings)
    checksum, rows, comments = _checksum(settings), _row_versions(_dsn(settings)), _comment_versions(_dsn(settings))

    second = asyncio.run(ensure_seeded(settings))

    assert first.seeded
    assert not second.seeded
    assert second.rows == {}
    assert second.record == first.record
    assert "already seeded with RANDOM_SEED=7 N_USERS=300" in second.detail
    assert _checksum(settings) == checksum
    assert _row_versions(_dsn(settings)) == rows
    assert _comment_versions(_dsn(settings)) == comments  # not even the DDL ran again


def test_same_seed_gives_the_same_content_in_two_databases(seed_settings_factory: SettingsFactory) -> None:
    one, two, other = seed_settings_factory(), seed_settings_factory(), seed_settings_factory(RANDOM_SEED="8")
    for settings in (one, two, other):
        seed_database(settings)

    assert _checksum(one) == _checksum(two)
    assert _checksum(one) != _checksum(other)


def test_a_database_seeded_with_other_settings_is_left_alone(seed_settings_factory: SettingsFactory) -> None:
    settings = seed_settings_factory()
    seed_database(settings)
    checksum = _checksum(settings)

    again = seed_database(seed_settings_factory(dsn=_dsn(settings), N_USERS="400", RANDOM_SEED="9"))

    assert not again.seeded
    assert "which the settings differ from: left alone" in again.detail
    assert _checksum(settings) == checksum


def test_rows_that_no_seed_recorded_are_left_alone(seed_settings_factory: SettingsFactory) -> None:
    settings = seed_settings_factory()
    with _cursor(_dsn(settings)) as cursor:
        apply_schema(cursor)
        cursor.execute("insert into customer_segments (segment_id, code, name, description, priority) "
                       "values (1, 'mine', 'Mine', 'Loaded by hand.', 1)")

    result = seed_database(settings)

    assert not result.seeded
    assert "no seed recorded" in result.detail
    assert _rows(_dsn(settings), "select code from customer_segments") == [("mine",)]
    assert _rows(_dsn(settings), "select count(*) from reference_seed") == [(0,)]


_PAUSING_SEED = """
import sys, time
from app.settings import load_settings
from db.seed import seed_database

def pause(step, rows):
    if step == "products":
        print("paused", flush=True)
        time.sleep(600)

environ = dict(arg.split("=", 1) for arg in sys.argv[1:])
seed_database(load_settings(environ), progress=pause)
"""


def test_a_seed_killed_halfway_leaves_nothing_and_the_next_matches_a_clean_run(
    seed_settings_factory: SettingsFactory,
) -> None:
    settings, clean = seed_settings_factory(N_USERS="3000"), seed_settings_factory(N_USERS="3000")
    variables = {"PG_DSN": _dsn(settings), "N_USERS": "3000", "N_PRODUCTS": "80", "N_WAREHOUSES": "3",
                 "N_SUPPLIERS": "12", "RANDOM_SEED": "7"}
    with _cursor(_dsn(settings)) as cursor:
        apply_schema(cursor)  # as after a first start that died: the schema is there, the rows are not
    child = subprocess.Popen(
        [sys.executable, "-c", _PAUSING_SEED, *(f"{key}={value}" for key, value in variables.items())],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready, "the seeding child did not reach the products table within 60 s"
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "paused"
        holding = _rows(
            _dsn(settings),
            "select count(*) from pg_locks l join pg_stat_activity a using (pid) "
            "where l.locktype = 'advisory' and a.datname = current_database() and a.state = 'idle in transaction'",
        )
        assert holding == [(1,)]  # users, warehouses and suppliers are in, uncommitted
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)

    assert _rows(_dsn(settings), "select count(*) from reference_seed") == [(0,)]
    assert _rows(_dsn(settings), "select count(*) from users") == [(0,)]
    assert seed_database(settings).seeded
    seed_database(clean)
    assert _checksum(settings) == _checksum(clean)


def test_a_cancelled_seed_rolls_back(seed_settings_factory: SettingsFactory) -> None:
    settings, clean = seed_settings_factory(N_USERS="20000"), seed_settings_factory(N_USERS="20000")

    async def cancel_during_the_users_copy() -> None:
        loop = asyncio.get_running_loop()
        task: asyncio.Task[SeedResult] | None = None

        def progress(step: str, rows: int) -> None:
            if step == "customer_segments" and task is not None:
                loop.call_soon_threadsafe(task.cancel)

        task = asyncio.create_task(ensure_seeded(settings, progress=progress))
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_during_the_users_copy())

    result = seed_database(settings)  # waits for the cancelled one to roll back and release the lock
    assert result.seeded
    seed_database(clean)
    assert _checksum(settings) == _checksum(clean)


def test_two_seeds_at_once_make_one_data_set(seed_settings_factory: SettingsFactory) -> None:
    settings = seed_settings_factory(RANDOM_SEED="")  # each picks its own seed: only one may win
    start = threading.Barrier(2)
    results: list[SeedResult] = []

    def seed() -> None:
        start.wait()
        results.append(seed_database(settings))

    threads = [threading.Thread(target=seed) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(result.seeded for result in results) == [False, True]
    record = results[0].record
    assert record is not None
    assert results[1].record == record
    clean = seed_settings_factory(RANDOM_SEED=str(record.random_seed))
    seed_database(clean)
    assert _checksum(settings) == _checksum(clean)


# Settings and the command ---------------------------------------------------------------------------------


def test_sizes_beyond_the_seeds_bounds_are_refused_before_connecting() -> None:
    with pytest.raises(SettingsError, match=r"N_WAREHOUSES='21'.*1-20"):
        load_settings({"N_WAREHOUSES": "21"})
    with pytest.raises(SettingsError, match="N_USERS"):
        load_settings({"N_USERS": "0"})


def test_an_unreachable_database_is_a_seed_error_without_the_password() -> None:
    settings = load_settings({"PG_DSN": "host=127.0.0.1 port=1 dbname=nowhere user=x password=hush connect_timeout=2"})
    with pytest.raises(SeedError, match=r"password=\*\*\*") as raised:
        seed_database(settings)
    assert "hush" not in str(raised.value)
    assert isinstance(raised.value.__cause__, psycopg2.OperationalError)


def test_seed_command_prints_progress_per_table_and_the_same_checksum_twice(
    seed_settings_factory: SettingsFactory,
) -> None:
    settings = seed_settings_factory()
    first: list[str] = []
    second: list[str] = []

    asyncio.run(seed_command(settings, say=first.append))
    asyncio.run(seed_command(settings, say=second.append))

    for table in REFERENCE_TABLES:
        assert any(line.split()[0] == table for line in first[:-2]), table
    assert first[-2].startswith("reference data: seeded")
    assert second[-2].startswith("reference data: already seeded")
    assert first[-1].startswith("reference data checksum: ")
    assert second[-1] == first[-1]


def test_progress_printer_says_rows_seconds_and_rate() -> None:
    said: list[str] = []
    ticks = iter([0.0, 2.0])
    printer = ProgressPrinter(said.append, clock=lambda: next(ticks))
    printer("users", 100_000)
    assert said[0].split() == ["users", "100,000", "rows", "2.00", "s", "50,000", "rows/s"]


def test_emptied_tables_are_seeded_again_even_with_a_seed_recorded(seed_settings_factory: SettingsFactory) -> None:
    settings, clean = seed_settings_factory(), seed_settings_factory()
    seed_database(settings)
    with _cursor(_dsn(settings)) as cursor:
        cursor.execute(f"truncate {', '.join(REFERENCE_TABLES)}")

    assert seed_database(settings).seeded
    seed_database(clean)
    assert _checksum(settings) == _checksum(clean)


def test_a_changed_schema_is_applied_to_a_seeded_database_without_touching_its_rows(
    seed_settings_factory: SettingsFactory,
) -> None:
    settings = seed_settings_factory()
    seed_database(settings)
    dsn = _dsn(settings)
    with _cursor(dsn) as cursor:
        cursor.execute("drop index products_category_idx")
        cursor.execute("update reference_seed set schema_sha256 = 'an older schema'")
    rows = _row_versions(dsn)

    result = seed_database(settings)

    assert not result.seeded
    assert _rows(dsn, "select to_regclass('products_category_idx') is not null") == [(True,)]
    assert _rows(dsn, "select schema_sha256 = %s from reference_seed", (schema_sha256(),)) == [(True,)]
    assert {table: versions for table, versions in _row_versions(dsn).items() if table != "reference_seed"} == {
        table: versions for table, versions in rows.items() if table != "reference_seed"
    }
