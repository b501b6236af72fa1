"""The other holders verify compares the topics with: Postgres (reference rows, stock) and the worker's stock view."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from contextlib import closing
from typing import Any

import psycopg2

from app.verify.checks import Reference
from app.verify.reader import VerifyError
from app.verify.relations import OnHand

#: Ids asked about per statement.
CHUNK = 10_000
#: The page size of GET /inventory/ (its largest).
PAGE_SIZE = 500

_TOTALS_WRONG = """
select i.product_id, i.on_hand, coalesce(w.on_hand, 0), i.reserved, coalesce(w.reserved, 0)
  from inventory i left join (select product_id, sum(on_hand) as on_hand, sum(reserved) as reserved
                                from warehouse_inventory group by product_id) w using (product_id)
 where i.on_hand <> coalesce(w.on_hand, 0) or i.reserved <> coalesce(w.reserved, 0)
 order by i.product_id
"""


def connect(dsn: str, timeout: float) -> Any:
    """A read-only connection to Postgres; VerifyError when it does not answer."""
    try:
        conn = psycopg2.connect(dsn, connect_timeout=max(1, int(timeout)), application_name="retail-datagen verify")
    except psycopg2.OperationalError as error:
        raise _failed("connecting", error) from error
    conn.set_session(readonly=True, autocommit=True)
    return conn


def read_reference(
    dsn: str, timeout: float, users: Iterable[int], products: Iterable[int], warehouses: Iterable[int]
) -> Reference:
    """Of the ids the events name, those the reference tables hold (with each product's SKU)."""
    try:
        with closing(connect(dsn, timeout)) as conn, conn.cursor() as cursor:
            known_users = _existing(cursor, "select user_id from users where user_id = any(%s)", users)
            statement = "select product_id, sku, cost_cents from products where product_id = any(%s)"
            rows = _rows(cursor, statement, products)
            known_products = {int(product_id): str(sku) for product_id, sku, _ in rows}
            costs = {int(product_id): int(cost) for product_id, _, cost in rows}
            known_warehouses = _existing(
                cursor, "select warehouse_id from warehouses where warehouse_id = any(%s)", warehouses
            )
    except psycopg2.Error as error:
        raise _failed("reading the reference tables", error) from error
    return Reference(frozenset(known_users), known_products, frozenset(known_warehouses), costs)


def read_stock(dsn: str, timeout: float) -> tuple[OnHand, list[str], int]:
    """On hand per (product, warehouse) of ``warehouse_inventory``, the products whose ``inventory`` row is not the
    sum of their rows, and how many ``inventory`` rows there are, in one snapshot."""
    try:
        with closing(connect(dsn, timeout)) as conn:
            conn.autocommit = False  # one transaction: both reads see the same moment
            with conn.cursor() as cursor:
                cursor.execute("set transaction isolation level repeatable read")
                cursor.execute("select product_id, warehouse_id, on_hand from warehouse_inventory")
                on_hand = {(int(product), int(house)): int(units) for product, house, units in cursor.fetchall()}
                cursor.execute(_TOTALS_WRONG)
                wrong = [
                    f"product {product}: on hand {total} != {summed}, reserved {reserved} != {summed_reserved}"
                    for product, total, summed, reserved, summed_reserved in cursor.fetchall()
                ]
                cursor.execute("select count(*) from inventory")
                rows = int(cursor.fetchone()[0])
            conn.rollback()
    except psycopg2.Error as error:
        raise _failed("reading the stock", error) from error
    return on_hand, wrong, rows


def read_listing(urls: Sequence[str], timeout: float) -> OnHand:
    """On hand per (product, warehouse) as ``GET /inventory/`` of each worker lists it, every page; the listings of
    several workers (each serving the products of its partitions) together. VerifyError naming the first that does
    not answer."""
    on_hand: dict[tuple[int, int], int] = {}
    for url in urls:
        page, pages = 1, 1
        while page <= pages:
            body = _get_json(f"{url.rstrip('/')}/inventory/?page={page}&size={PAGE_SIZE}", timeout)
            for item in body["items"]:
                for stock in item["warehouses"]:
                    on_hand[(int(item["product_id"]), int(stock["warehouse_id"]))] = int(stock["on_hand"])
            pages = int(body["pages"])
            page += 1
    return on_hand


def _failed(what: str, error: psycopg2.Error) -> VerifyError:
    first_line = (str(error).strip().splitlines() or [""])[0]
    return VerifyError(f"Postgres: {what} failed: {type(error).__name__}: {first_line}")


def _get_json(url: str, timeout: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        msg = f"GET {url} answered {error.code}"
        raise VerifyError(msg) from error
    except (OSError, ValueError) as error:
        msg = f"GET {url} did not answer ({type(error).__name__}: {error})"
        raise VerifyError(msg) from error
    if not isinstance(body, dict) or "items" not in body or "pages" not in body:
        msg = f"GET {url}: not an inventory listing"
        raise VerifyError(msg)
    return body


def _existing(cursor: Any, statement: str, ids: Iterable[int]) -> set[int]:
    return {int(row[0]) for row in _rows(cursor, statement, ids)}


def _rows(cursor: Any, statement: str, ids: Iterable[int]) -> list[tuple[Any, ...]]:
    """The rows ``statement`` finds for ``ids``, asked about CHUNK at a time."""
    wanted = sorted(set(ids))
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(wanted), CHUNK):
        cursor.execute(statement, (wanted[start : start + CHUNK],))
        rows += cursor.fetchall()
    return rows
