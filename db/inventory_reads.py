"""Reads of the Postgres inventory for the web views: ``inventory`` and ``warehouse_inventory``, by product id.

With CANON_INVENTORY=postgres these rows are the stock itself; each read is one statement (one snapshot), over a
small pool opened once when the worker starts.
"""

from __future__ import annotations

from typing import Any

import aiopg

from app.derivation import Warehouse
from app.inventory import StockState, WarehouseStock

#: Connections the views may hold at once: they are light reads, and the agents have their own pool.
POOL_SIZE = 2

_UPDATED_MS = "floor(extract(epoch from w.updated_at) * 1000)::bigint"  # whole ms, truncated as ISO text is

_PRODUCTS = f"""
with chosen as ({{chosen}})
select chosen.product_id, chosen.sku, w.warehouse_id, w.on_hand, w.reserved, {_UPDATED_MS}
  from chosen left join warehouse_inventory w using (product_id)
 order by chosen.product_id, w.warehouse_id
"""
_PAGE_OF_PRODUCTS = "select product_id, sku from inventory order by product_id limit %s offset %s"
_ONE_PRODUCT = "select product_id, sku from inventory where product_id = %s"

_WAREHOUSE_PAGE = f"""
select w.product_id, i.sku, w.on_hand, w.reserved, {_UPDATED_MS}
  from warehouse_inventory w join inventory i using (product_id)
 where w.warehouse_id = %s
 order by w.product_id limit %s offset %s
"""


class InventoryReads:
    """The stock as Postgres holds it, for the views; ``open`` makes the pool, ``close`` ends it."""

    def __init__(self, pool: aiopg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str) -> InventoryReads:
        """A pool of at most POOL_SIZE connections to ``dsn``."""
        return cls(await aiopg.create_pool(dsn, minsize=1, maxsize=POOL_SIZE))

    async def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()
        await self._pool.wait_closed()

    async def product_count(self) -> int:
        """How many products have an ``inventory`` row."""
        rows = await self._fetch("select count(*) from inventory", ())
        return int(rows[0][0])

    async def products(self, offset: int, limit: int) -> list[StockState]:
        """``limit`` products' stock from the ``offset``-th, by product id."""
        rows = await self._fetch(_PRODUCTS.format(chosen=_PAGE_OF_PRODUCTS), (limit, offset))
        return _states(rows)

    async def product(self, product_id: int) -> StockState | None:
        """One product's stock; None when it has no ``inventory`` row."""
        states = _states(await self._fetch(_PRODUCTS.format(chosen=_ONE_PRODUCT), (product_id,)))
        return states[0] if states else None

    async def product_of(self, sku: str) -> int | None:
        """The product id of ``sku``; None for an SKU without stock."""
        rows = await self._fetch("select product_id from inventory where sku = %s", (sku,))
        return int(rows[0][0]) if rows else None

    async def warehouse(self, warehouse_id: int) -> Warehouse | None:
        """The warehouse; None for an unknown id."""
        rows = await self._fetch(
            "select warehouse_id, region, country from warehouses where warehouse_id = %s", (warehouse_id,)
        )
        return Warehouse(int(rows[0][0]), rows[0][1], rows[0][2]) if rows else None

    async def warehouse_count(self, warehouse_id: int) -> int:
        """How many products the warehouse keeps (its ``warehouse_inventory`` rows)."""
        rows = await self._fetch("select count(*) from warehouse_inventory where warehouse_id = %s", (warehouse_id,))
        return int(rows[0][0])

    async def warehouse_stock(
        self, warehouse_id: int, offset: int, limit: int
    ) -> list[tuple[int, str, WarehouseStock]]:
        """(product_id, sku, stock) of ``limit`` products kept in the warehouse from the ``offset``-th, by id."""
        rows = await self._fetch(_WAREHOUSE_PAGE, (warehouse_id, limit, offset))
        return [(int(row[0]), row[1], WarehouseStock(int(row[2]), int(row[3]), _ms(row[4]))) for row in rows]

    async def _fetch(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async with self._pool.acquire() as conn, conn.cursor() as cursor:
            await cursor.execute(query, params)
            rows: list[tuple[Any, ...]] = await cursor.fetchall()
            return rows


def _ms(value: Any) -> int | None:
    return int(value) if value is not None else None


def _states(rows: list[tuple[Any, ...]]) -> list[StockState]:
    """Rows of (product_id, sku, warehouse_id, on_hand, reserved, updated_ms), by product: one state each (a
    product without warehouse rows has a row of nulls from the left join, and no warehouses)."""
    states: dict[int, tuple[str, dict[int, WarehouseStock]]] = {}
    for product_id, sku, warehouse_id, on_hand, reserved, updated_ms in rows:
        _, warehouses = states.setdefault(int(product_id), (sku, {}))
        if warehouse_id is not None:
            warehouses[int(warehouse_id)] = WarehouseStock(int(on_hand), int(reserved), _ms(updated_ms))
    return [StockState(product_id, sku, warehouses) for product_id, (sku, warehouses) in states.items()]
