"""The inventory mirror: the Kafka-canonical stock table written into Postgres, one statement per table a batch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import aiopg

_WAREHOUSES = """
update warehouse_inventory w
   set on_hand = v.on_hand, reserved = v.reserved, updated_at = to_timestamp(v.updated_ms / 1000.0)
  from (values {rows}) as v(warehouse_id, product_id, on_hand, reserved, updated_ms)
 where w.warehouse_id = v.warehouse_id and w.product_id = v.product_id
"""

_TOTALS = """
update inventory i
   set on_hand = s.on_hand, reserved = s.reserved, updated_at = now()
  from (select product_id, sum(on_hand)::int as on_hand, sum(reserved)::int as reserved
          from warehouse_inventory where product_id = any(%s) group by product_id) as s
 where i.product_id = s.product_id
"""


def warehouse_rows(states: Iterable[Mapping[str, Any]]) -> list[tuple[int, int, int, int, int]]:
    """(warehouse_id, product_id, on_hand, reserved, updated_ms) of each warehouse of each stored StockState."""
    return [
        (
            int(stock["warehouse_id"]),
            int(state["product_id"]),
            int(stock["on_hand"]),
            int(stock["reserved"]),
            int(stock["updated_ms"] or 0),
        )
        for state in states
        for stock in state["warehouses"]
    ]


async def mirror_stock(dsn: str, states: list[Mapping[str, Any]]) -> int:
    """Write these products' stock to warehouse_inventory and their totals to inventory, in one transaction.

    ``inventory`` is recomputed from ``warehouse_inventory`` in the same transaction, so the two always agree.
    """
    rows = warehouse_rows(states)
    if not rows:
        return 0
    async with aiopg.connect(dsn) as conn, conn.cursor() as cursor:
        await cursor.execute("begin")
        try:
            products = await write_stock(cursor, rows)
        except BaseException:
            await cursor.execute("rollback")
            raise
        await cursor.execute("commit")
    return products


async def write_stock(cursor: Any, rows: list[tuple[int, int, int, int, int]]) -> int:
    """Inside the caller's transaction: these (warehouse_id, product_id, on_hand, reserved, updated_ms) rows into
    warehouse_inventory, and their products' totals into inventory; the number of products written."""
    if not rows:
        return 0
    values = ",".join(["(%s::bigint, %s::bigint, %s::int, %s::int, %s::bigint)"] * len(rows))
    products = sorted({row[1] for row in rows})
    await cursor.execute(_WAREHOUSES.format(rows=values), [item for row in rows for item in row])
    await cursor.execute(_TOTALS, (products,))
    return len(products)
