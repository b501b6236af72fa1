"""Reads what the fulfilment agents need of the reference data: warehouses, seeded stock, reorder rules."""

from __future__ import annotations

import aiopg

from app.derivation import Warehouse
from app.inventory.stockroom import Policy, StockReference

__all__ = ["StockReference", "load_stock_reference"]


async def load_stock_reference(dsn: str) -> StockReference:
    """Warehouses, seeded stock per warehouse and SKU, and reorder rules with lead times and reliabilities.

    A product without a primary supplier reorders with a 7-day lead time from a supplier that always delivers.
    """
    async with aiopg.connect(dsn) as conn, conn.cursor() as cursor:
        await cursor.execute("select warehouse_id, region, country from warehouses")
        warehouses = {row[0]: Warehouse(row[0], row[1], row[2]) for row in await cursor.fetchall()}
        await cursor.execute(
            "select wi.product_id, wi.warehouse_id, wi.on_hand, wi.reorder_point, wi.reorder_qty,"
            " coalesce(ps.lead_time_days, 7), p.sku, coalesce(s.reliability, 1)"
            " from warehouse_inventory wi join products p using (product_id)"
            " left join product_suppliers ps on ps.product_id = wi.product_id and ps.is_primary"
            " left join suppliers s on s.supplier_id = ps.supplier_id"
        )
        rows = await cursor.fetchall()
    return StockReference(
        warehouses=warehouses,
        opening={(row[0], row[1]): int(row[2]) for row in rows},
        skus={row[0]: row[6] for row in rows},
        policies={(row[0], row[1]): Policy(int(row[3]), int(row[4]), int(row[5]), float(row[7])) for row in rows},
    )
