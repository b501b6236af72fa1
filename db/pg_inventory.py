"""Postgres-canonical inventory (CANON_INVENTORY=postgres): read-modify-write, one transaction per decision.

Rows of a product are locked (``select ... for update``) for the length of a decision, so concurrent workers
never lose an update; ``inventory`` is recomputed from ``warehouse_inventory`` in the same transaction, so the two
always agree; every change id applied is recorded, so a change processed twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

import aiopg

from app.inventory import StockState, WarehouseStock

T = TypeVar("T")

_APPLIED_DDL = """
create table if not exists inventory_applied_changes (
    change_id  text        primary key,
    applied_at timestamptz not null default now()
);
comment on table inventory_applied_changes is
    'Inventory changes already applied by CANON_INVENTORY=postgres: a change seen again is skipped.';
"""

_LOCK = """
select w.warehouse_id, w.on_hand, w.reserved, (extract(epoch from w.updated_at) * 1000)::bigint, p.sku
  from warehouse_inventory w join products p using (product_id)
 where w.product_id = %s order by w.warehouse_id for update of w
"""

_MOVE = """
update warehouse_inventory
   set on_hand = greatest(on_hand + %(delta)s, 0),
       reserved = least(reserved, greatest(on_hand + %(delta)s, 0)),
       updated_at = to_timestamp(%(event_ms)s / 1000.0)
 where product_id = %(product_id)s and warehouse_id = %(warehouse_id)s
"""

_TOTAL = """
update inventory i set on_hand = s.on_hand, reserved = s.reserved, updated_at = now()
  from (select sum(on_hand)::int as on_hand, sum(reserved)::int as reserved
          from warehouse_inventory where product_id = %(product_id)s) as s
 where i.product_id = %(product_id)s
"""


class PostgresInventory:
    """The stock of each product in Postgres, changed only inside a transaction that holds its rows."""

    def __init__(self, pool: aiopg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str) -> PostgresInventory:
        """A pool of connections, and the table of applied change ids."""
        pool = await aiopg.create_pool(dsn, minsize=1, maxsize=4)
        async with pool.acquire() as conn, conn.cursor() as cursor:
            await cursor.execute(_APPLIED_DDL)
        return cls(pool)

    async def mark_applied(self, change_ids: Iterable[str]) -> None:
        """Record changes whose effect the rows already hold (the opening balances)."""
        ids = list(change_ids)
        if not ids:
            return
        async with self._pool.acquire() as conn, conn.cursor() as cursor:
            values = ",".join(["(%s)"] * len(ids))
            await cursor.execute(
                f"insert into inventory_applied_changes (change_id) values {values} on conflict do nothing", ids
            )

    async def apply(self, change: Mapping[str, Any]) -> StockState | None:
        """Apply ``change`` unless it was applied before; the product's stock afterwards, None for a repeat."""

        async def move(cursor: Any, state: StockState) -> StockState | None:
            if not await _record(cursor, str(change["change_id"])):
                return None
            await _move(cursor, change)
            return await _locked_state(cursor, int(change["product_id"]))

        return await self.decide(int(change["product_id"]), move)

    async def decide(self, product_id: int, decision: Callable[[Any, StockState], Awaitable[T]]) -> T:
        """Run ``decision(cursor, stock)`` in one transaction holding the product's rows."""
        async with self._pool.acquire() as conn, conn.cursor() as cursor:
            await cursor.execute("begin")
            try:
                state = await _locked_state(cursor, product_id)
                outcome = await decision(cursor, state)
            except BaseException:
                await cursor.execute("rollback")
                raise
            await cursor.execute("commit")
            return outcome

    async def take(self, cursor: Any, change: Mapping[str, Any]) -> None:
        """Inside ``decide``: apply a change the decision made (a SALE), recording its id."""
        if await _record(cursor, str(change["change_id"])):
            await _move(cursor, change)

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()


async def _record(cursor: Any, change_id: str) -> bool:
    await cursor.execute(
        "insert into inventory_applied_changes (change_id) values (%s) on conflict do nothing returning 1",
        (change_id,),
    )
    return await cursor.fetchone() is not None


async def _move(cursor: Any, change: Mapping[str, Any]) -> None:
    params = {
        "delta": int(change["delta"]),
        "event_ms": int(change["event_time"]),
        "product_id": int(change["product_id"]),
        "warehouse_id": int(change["warehouse_id"]),
    }
    await cursor.execute(_MOVE, params)
    await cursor.execute(_TOTAL, params)


async def _locked_state(cursor: Any, product_id: int) -> StockState:
    await cursor.execute(_LOCK, (product_id,))
    rows = await cursor.fetchall()
    sku = rows[0][4] if rows else f"#{product_id}"
    warehouses = {int(row[0]): WarehouseStock(int(row[1]), int(row[2]), int(row[3])) for row in rows}
    return StockState(product_id, sku, warehouses)
