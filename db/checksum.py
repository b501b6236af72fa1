"""A content checksum of the eight reference tables: equal checksums, equal rows."""

from __future__ import annotations

import hashlib
from typing import Any

from psycopg2 import sql

#: Each reference table and the columns that order its rows (its primary key).
REFERENCE_TABLES: dict[str, tuple[str, ...]] = {
    "customer_segments": ("segment_id",),
    "users": ("user_id",),
    "warehouses": ("warehouse_id",),
    "suppliers": ("supplier_id",),
    "products": ("product_id",),
    "product_suppliers": ("product_id", "supplier_id"),
    "inventory": ("product_id",),
    "warehouse_inventory": ("warehouse_id", "product_id"),
}


def table_checksums(cursor: Any) -> dict[str, str]:
    """Per table: the MD5 of its rows' text, in primary-key order, with row count.

    Row text depends on session settings; they are pinned for this transaction so the same rows give the
    same checksum from any client.
    """
    cursor.execute("set local timezone = 'UTC'; set local datestyle = 'ISO, YMD'; set local extra_float_digits = 1")
    checksums = {}
    for table, key in REFERENCE_TABLES.items():
        statement = sql.SQL("select count(*), md5(coalesce(string_agg(t::text, E'\\n' order by {}), '')) from {} t")
        cursor.execute(
            statement.format(sql.SQL(", ").join(sql.Identifier(column) for column in key), sql.Identifier(table))
        )
        count, digest = cursor.fetchone()
        checksums[table] = f"{count}:{digest}"
    return checksums


def content_checksum(cursor: Any) -> str:
    """One SHA-256 over the eight tables' checksums."""
    checksums = table_checksums(cursor)
    text = "\n".join(f"{table}={checksums[table]}" for table in REFERENCE_TABLES)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
