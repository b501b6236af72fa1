"""Seeding the reference data: schema, rows and seed record in one transaction under an advisory lock.

``ensure_seeded`` is safe at every worker start: a database whose reference_seed row says it holds a seed is left
alone (without taking the lock or touching the schema when the schema is current), and so are rows that no seed
recorded; only when the eight tables are all empty does it seed. Of workers starting at once exactly one seeds
while the others wait for its lock and then find its record. A seed that dies halfway rolls back whole, so the
next one starts from empty tables and writes the same rows as a clean run.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import closing, suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg2
from psycopg2 import sql

from app.reference import GENERATOR_VERSION, REFERENCE_DATE, Sizes, reference_instant, reference_tables
from app.settings import Settings, mask_dsn
from db.bulk import copy_rows, foreign_keys_deferred
from db.checksum import REFERENCE_TABLES, content_checksum
from db.exceptions import SeedError
from db.schema import apply_schema, schema_sha256

log = logging.getLogger(__name__)

#: The pg_advisory_xact_lock key of seeding: the bytes of "RDGSEED".
SEED_LOCK_KEY = 0x52_44_47_53_45_45_44
#: Called after each step with the step's name and its rows: "schema" (0 rows), then each table as its
#: COPY completes (its rows are generated while they stream in). Called from the seeding thread.
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class SeedRecord:
    """The reference_seed row: what the rows in the database were made from."""

    random_seed: int
    sizes: Sizes
    generator_version: int
    schema_sha256: str


@dataclass(frozen=True)
class SeedResult:
    """What a seeding call did: ``seeded`` only when it wrote the data set; ``rows`` counts what it wrote."""

    seeded: bool
    record: SeedRecord | None
    seconds: float
    detail: str
    rows: Mapping[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the log or the terminal."""
        return f"reference data: {self.detail} ({self.seconds:.2f} s)"


def sizes_from_settings(settings: Settings) -> Sizes:
    """N_USERS, N_PRODUCTS, N_WAREHOUSES and N_SUPPLIERS; SettingsError when one is out of the seed's bounds."""
    return Sizes(settings.n_users, settings.n_products, settings.n_warehouses, settings.n_suppliers)


def describe(record: SeedRecord) -> str:
    """The settings a seed was made with, as variables."""
    sizes = record.sizes
    return (
        f"RANDOM_SEED={record.random_seed} N_USERS={sizes.users} N_PRODUCTS={sizes.products} "
        f"N_WAREHOUSES={sizes.warehouses} N_SUPPLIERS={sizes.suppliers}"
    )


class SeedRun:
    """One seeding attempt, run in a thread; ``cancel()`` from another thread aborts it and it rolls back."""

    def __init__(self, settings: Settings, progress: Progress | None = None) -> None:
        self._settings = settings
        self._sizes = sizes_from_settings(settings)
        self._progress = progress or (lambda step, rows: None)
        self._cancelled = threading.Event()
        self._conn: Any = None
        self._step = "connect"

    def run(self) -> SeedResult:
        """Seed unless the database holds a seed already; SeedError, chained, when Postgres refuses."""
        dsn = self._settings.pg_dsn.get_secret_value()
        started = time.perf_counter()
        try:
            with closing(psycopg2.connect(dsn, application_name="retail-datagen seed")) as conn:
                self._conn = conn
                outcome = self._run(conn)
        except psycopg2.Error as error:
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            outcome_text = "was cancelled: rolled back" if self._cancelled.is_set() else f"failed: {first_line}"
            msg = f"seeding {mask_dsn(dsn)}, {self._step}, {outcome_text}"
            raise SeedError(msg) from error
        finally:
            self._conn = None
        seeded, record, detail, rows = outcome
        return SeedResult(seeded, record, time.perf_counter() - started, detail, rows)

    def cancel(self) -> None:
        """Abort the seed: the statement running now fails, the next step does not start."""
        self._cancelled.set()
        conn = self._conn
        if conn is not None:
            with suppress(psycopg2.Error):  # the connection is closing already
                conn.cancel()

    def _run(self, conn: Any) -> tuple[bool, SeedRecord | None, str, dict[str, int]]:
        with conn.cursor() as cursor:
            self._step = "reading the seed record"
            record = read_record(cursor)
            current = record is not None and record.schema_sha256 == schema_sha256()
            tables = table_states(cursor) if current else {}
            conn.rollback()
            if record is not None and current and None not in tables.values() and any(tables.values()):
                return False, record, self._left_alone(record), {}
            with conn:  # one transaction: commit at the end, roll back on any error
                return self._seed_locked(cursor)

    def _seed_locked(self, cursor: Any) -> tuple[bool, SeedRecord | None, str, dict[str, int]]:
        self._step = "waiting for the seed lock"
        cursor.execute("select pg_advisory_xact_lock(%s)", (SEED_LOCK_KEY,))
        self._step = "applying the schema"
        apply_schema(cursor)
        self._report("schema", 0)
        record = read_record(cursor)
        has_rows = any(table_states(cursor).values())
        if record is not None and has_rows:
            if record.schema_sha256 != schema_sha256():
                cursor.execute("update reference_seed set schema_sha256 = %s", (schema_sha256(),))
            return False, record, self._left_alone(record), {}
        if has_rows:
            log.warning("the reference tables hold rows that no seed recorded: left alone")
            return False, None, "tables hold rows that no seed recorded: left alone", {}
        if record is not None:
            log.info("the reference tables are empty though %s was recorded: seeding them again", describe(record))
            cursor.execute("delete from reference_seed")
        random_seed = self._random_seed()
        rows = self._copy(cursor, random_seed)
        self._step = "recording the seed"
        record = SeedRecord(random_seed, self._sizes, GENERATOR_VERSION, schema_sha256())
        write_record(cursor, record)
        return True, record, f"seeded {sum(rows.values()):,} rows into {len(rows)} tables, {describe(record)}", rows

    def _copy(self, cursor: Any, random_seed: int) -> dict[str, int]:
        stamp = reference_instant(REFERENCE_DATE)
        rows = {}
        with foreign_keys_deferred(cursor, list(REFERENCE_TABLES)):
            for table in reference_tables(self._sizes, random.Random(random_seed), REFERENCE_DATE):
                self._step = f"generating and copying {table.name}"
                columns = (*table.columns, "created_at", "updated_at")
                rows[table.name] = copy_rows(cursor, table.name, columns, table.rows, (stamp, stamp))
                self._report(table.name, rows[table.name])
            self._step = "checking the foreign keys"
        self._report("foreign keys", sum(rows.values()))
        return rows

    def _random_seed(self) -> int:
        if self._settings.random_seed is not None:
            return self._settings.random_seed
        chosen = secrets.randbelow(2**63)
        log.info("RANDOM_SEED is unset: seeding with RANDOM_SEED=%d (set it to make the same rows again)", chosen)
        return chosen

    def _left_alone(self, record: SeedRecord) -> str:
        wanted = self._settings.random_seed
        if record.sizes != self._sizes or (wanted is not None and wanted != record.random_seed):
            log.warning(
                "the database holds a seed made with %s, not the settings' sizes or seed: left alone "
                "(drop the reference tables or point PG_DSN at an empty database to seed anew)",
                describe(record),
            )
            return f"already seeded with {describe(record)}, which the settings differ from: left alone"
        return f"already seeded with {describe(record)}: left alone"

    def _report(self, step: str, rows: int) -> None:
        if self._cancelled.is_set():
            msg = f"seeding was cancelled after {step}: rolled back"
            raise SeedError(msg)
        self._progress(step, rows)


def read_record(cursor: Any) -> SeedRecord | None:
    """The reference_seed row, or None when there is none (or no table yet)."""
    cursor.execute("select to_regclass('reference_seed') is not null")
    if not cursor.fetchone()[0]:
        return None
    cursor.execute(
        "select random_seed, n_users, n_products, n_warehouses, n_suppliers, generator_version, schema_sha256 "
        "from reference_seed"
    )
    found = cursor.fetchone()
    if found is None:
        return None
    random_seed, users, products, warehouses, suppliers, version, sha = found
    return SeedRecord(int(random_seed), Sizes(users, products, warehouses, suppliers), version, sha)


def write_record(cursor: Any, record: SeedRecord) -> None:
    """Insert the reference_seed row: inside the seed's transaction, so it commits with the rows or not at all."""
    sizes = record.sizes
    cursor.execute(
        "insert into reference_seed (random_seed, n_users, n_products, n_warehouses, n_suppliers, "
        "generator_version, schema_sha256) values (%s, %s, %s, %s, %s, %s, %s)",
        (record.random_seed, sizes.users, sizes.products, sizes.warehouses, sizes.suppliers,
         record.generator_version, record.schema_sha256),
    )


def table_states(cursor: Any) -> dict[str, bool | None]:
    """Per reference table: whether it holds a row, or None when it does not exist."""
    cursor.execute(
        "select name from unnest(%s::text[]) name where to_regclass(name) is not null", (list(REFERENCE_TABLES),)
    )
    present = [name for (name,) in cursor.fetchall()]
    states: dict[str, bool | None] = dict.fromkeys(REFERENCE_TABLES)
    if present:
        probes = (sql.SQL("exists (select from {})").format(sql.Identifier(name)) for name in present)
        cursor.execute(sql.SQL("select {}").format(sql.SQL(", ").join(probes)))
        states.update(zip(present, cursor.fetchone(), strict=True))
    return states


def seed_database(settings: Settings, *, progress: Progress | None = None) -> SeedResult:
    """Apply the schema and seed the reference data unless the database holds a seed: blocking."""
    return SeedRun(settings, progress).run()


async def ensure_seeded(settings: Settings, *, progress: Progress | None = None) -> SeedResult:
    """Apply the schema and seed the reference data unless the database holds a seed; safe at every start.

    The work runs in a thread (COPY needs a blocking psycopg2 connection); cancelling the caller cancels it,
    and it rolls back.
    """
    run = SeedRun(settings, progress)
    try:
        return await asyncio.to_thread(run.run)
    except asyncio.CancelledError:
        run.cancel()
        raise


def reference_checksum(settings: Settings) -> str:
    """The content checksum of the eight reference tables in the settings' database: blocking."""
    dsn = settings.pg_dsn.get_secret_value()
    try:
        with (
            closing(psycopg2.connect(dsn, application_name="retail-datagen checksum")) as conn,
            conn,
            conn.cursor() as cursor,
        ):
            return content_checksum(cursor)
    except psycopg2.Error as error:
        msg = f"cannot checksum the reference tables of {mask_dsn(dsn)}: {str(error).strip()}"
        raise SeedError(msg) from error


class ProgressPrinter:
    """A Progress that says one line per step: rows, seconds since the previous step, rows per second."""

    def __init__(self, say: Callable[[str], None] = print, clock: Callable[[], float] = time.perf_counter) -> None:
        self._say = say
        self._clock = clock
        self._last = clock()

    def __call__(self, step: str, rows: int) -> None:
        now = self._clock()
        seconds, self._last = now - self._last, now
        rate = f"{rows / seconds:>12,.0f} rows/s" if rows and seconds > 0 else ""
        self._say(f"  {step:<20} {rows:>10,} rows {seconds:8.2f} s {rate}".rstrip())


def log_progress(step: str, rows: int) -> None:
    """A Progress for the worker: one log line per step."""
    log.info("seed: %s done (%d rows)", step, rows)


async def seed_command(settings: Settings, say: Callable[[str], None] = print) -> SeedResult:
    """What ``faust -A app seed`` does: seed if needed, printing progress, the outcome and the checksum."""
    result = await ensure_seeded(settings, progress=ProgressPrinter(say))
    say(result.summary())
    say(f"reference data checksum: {await asyncio.to_thread(reference_checksum, settings)}")
    return result
