"""The Postgres ledger against the real server: workers starting together create its tables without colliding."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg2
import pytest

from agents.pg_ledger import PostgresLedger
from app.derivation import DerivationConfig
from app.inventory.stockroom import StockReference
from tests.unit.derivation.support import WAREHOUSES

pytestmark = pytest.mark.integration

REFERENCE = StockReference(warehouses=WAREHOUSES, opening={}, skus={7: "SKU-000007"}, policies={})


async def _start_together(dsn: str, count: int) -> None:
    ledgers = [PostgresLedger(dsn, DerivationConfig(), 60_000) for _ in range(count)]
    try:
        await asyncio.gather(*(ledger.start(REFERENCE) for ledger in ledgers))
    finally:
        await asyncio.gather(*(ledger.stop() for ledger in ledgers))


@pytest.mark.parametrize("attempt", range(3))
def test_ledgers_starting_together_create_the_tables_once(
    pg_database_factory: Callable[[], str], attempt: int
) -> None:
    dsn = pg_database_factory()
    asyncio.run(_start_together(dsn, 4))
    with psycopg2.connect(dsn) as conn, conn.cursor() as cursor:
        cursor.execute("select count(*) from pg_tables where tablename like 'stock\\_%'")
        (tables,) = cursor.fetchone()
    assert tables >= 4
