"""Reads the generator's catalogue (users, products, warehouses) from Postgres, and writes price changes back."""

from __future__ import annotations

from collections.abc import Sequence

import aiopg

from app.generation import Catalog, PriceChange, Product


async def load_catalog(dsn: str) -> Catalog:
    """One snapshot of the reference tables the generator samples from: three queries at start, none per event.

    Products come at their list (seeded) prices: the generator's price walk moves them from there, the same way in
    every shard, so a worker that starts after others have moved prices charges what they charge.
    """
    async with aiopg.connect(dsn) as conn, conn.cursor() as cursor:
        await cursor.execute("select user_id, popularity from users order by user_id")
        users = await cursor.fetchall()
        await cursor.execute(
            "select product_id, sku, name, category, coalesce(list_price_cents, price_cents), popularity, cost_cents"
            " from products"
            " order by product_id"
        )
        products = await cursor.fetchall()
        await cursor.execute("select warehouse_id from warehouses order by warehouse_id")
        warehouses = await cursor.fetchall()
    return Catalog(
        user_ids=tuple(row[0] for row in users),
        user_weights=tuple(float(row[1]) for row in users),
        products=tuple(
            Product(row[0], row[1], row[2], row[3], int(row[4]), float(row[5]), int(row[6])) for row in products
        ),
        warehouse_ids=tuple(row[0] for row in warehouses),
    )


async def write_price_changes(dsn: str, changes: Sequence[PriceChange]) -> int:
    """Apply price changes to ``products`` in one statement; the rows updated.

    The last change of a product wins; a price is never set below the product's cost (the table's CHECK).
    """
    latest = {change.product_id: change.new_cents for change in changes}
    if not latest:
        return 0
    values = ",".join(["(%s::bigint, %s::bigint)"] * len(latest))
    params = [item for pair in latest.items() for item in pair]
    async with aiopg.connect(dsn) as conn, conn.cursor() as cursor:
        await cursor.execute(
            f"update products p set price_cents = greatest(v.price_cents, p.cost_cents), updated_at = now() "
            f"from (values {values}) as v(product_id, price_cents) where p.product_id = v.product_id",
            params,
        )
        return int(cursor.rowcount)
