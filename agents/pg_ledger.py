"""The Postgres-canonical ledger (CANON_INVENTORY=postgres): read-modify-write, one transaction per batch.

A batch locks its products' rows (``for update``, in product order, so concurrent workers cannot deadlock),
decides its requests in memory against them, and writes the new stock, the ledger's bookkeeping and the
records to send (the outbox, ``stock_outbox``) in the same transaction. The records are sent after the commit
and deleted from the outbox once Kafka has them; what a dead worker left there is sent by the next one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from importlib.resources import files
from typing import Any

import aiopg

from agents.ledger import Batch, Decided, Request, run_requests, wall_ms
from agents.requests import DUE, OPENING
from app.derivation import DerivationConfig
from app.inventory import StockState
from app.inventory.stockroom import Backorder, Outcome, ProductStock, Scheduled, StockReference, Stockroom
from app.wire.roles import INVENTORY_CHANGES
from db.mirror import write_stock

log = logging.getLogger(__name__)

#: Outbox rows older than this (seconds) are taken to be left by a worker that died.
ORPHAN_SECONDS = 30
#: A due request not answered within this many milliseconds is sent again.
DUE_RESEND_MS = 30_000
#: Most due items requested per timer tick.
DUE_LIMIT = 10_000

_LOCK = """
select product_id, warehouse_id, on_hand, reserved, floor(extract(epoch from updated_at) * 1000)::bigint
  from warehouse_inventory where product_id = any(%s) order by product_id, warehouse_id for update
"""
_PRODUCTS = """
select product_id, on_order, requests_offset, orders_seen, next_seq
  from stock_products where product_id = any(%s) order by product_id for update
"""
_SAVE_PRODUCTS = """
insert into stock_products (product_id, on_order, requests_offset, orders_seen, next_seq) values {rows}
on conflict (product_id) do update set on_order = excluded.on_order, requests_offset = excluded.requests_offset,
    orders_seen = excluded.orders_seen, next_seq = excluded.next_seq
"""


#: The pg_advisory_xact_lock key of the ledger's DDL: the bytes of "RDGLEDG".
LEDGER_DDL_LOCK_KEY = 0x52_44_47_4C_45_44_47


class PostgresLedger:
    """The stock in Postgres rows; each batch one transaction."""

    def __init__(
        self, dsn: str, config: DerivationConfig, timeout_ms: int, clock: Callable[[], int] | None = None
    ) -> None:
        """``clock``: epoch ms of the agents' time, at which a batch is decided (the wall clock by default)."""
        self._clock = clock or wall_ms
        self._dsn = dsn
        self._config = config
        self._timeout_ms = timeout_ms
        self._pool: aiopg.Pool | None = None
        self._room: Stockroom | None = None
        self._figures: dict[str, int] = {}
        self._orphans_checked = 0.0

    async def start(self, reference: StockReference) -> None:
        """A pool of connections, and the ledger's tables."""
        self._room = Stockroom(reference, self._config, self._timeout_ms)
        self._pool = await aiopg.create_pool(self._dsn, minsize=1, maxsize=3)
        async with self._pool.acquire() as conn, conn.cursor() as cursor:
            # Workers starting together would collide creating the same tables: one at a time, under a lock.
            await cursor.execute("begin")
            try:
                await cursor.execute("select pg_advisory_xact_lock(%s)", (LEDGER_DDL_LOCK_KEY,))
                await cursor.execute(files("db").joinpath("stock_ledger.sql").read_text())
            except BaseException:
                await cursor.execute("rollback")
                raise
            await cursor.execute("commit")

    async def stop(self) -> None:
        """Close the pool."""
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()

    async def decide(self, requests: list[Request]) -> Decided:
        """Decide ``requests`` in one transaction; on return it is committed, the outbox included."""
        decided = Decided()
        if not requests:
            return decided
        room = self._stockroom()
        product_ids = sorted({request.product_id for request in requests})
        due_ids = [str(request.body) for request in requests if request.kind == DUE]
        opening_ids = [str(request.body["change_id"]) for request in requests if request.kind == OPENING]
        async with self._db().acquire() as conn, conn.cursor() as cursor:
            await cursor.execute("begin")
            try:
                stocks = await _load_products(cursor, product_ids, room)
                backlogs = await _load_backlogs(cursor, product_ids)
                items = await _take_items(cursor, due_ids)
                fresh = await _new_openings(cursor, opening_ids)

                def opening(stock: ProductStock, change: dict[str, Any], out: Outcome) -> None:
                    if change["change_id"] in fresh:  # the rows hold the seeded stock already
                        fresh.discard(change["change_id"])
                        out.records.append((INVENTORY_CHANGES, str(stock.product_id), dict(change)))
                        out.counts["opening balances"] += 1

                def product(product_id: int, partition: int) -> ProductStock:
                    stock = stocks[product_id]
                    stock.partition = partition
                    return stock

                batch = run_requests(
                    room,
                    requests,
                    product,
                    lambda product_id: backlogs.setdefault(product_id, []),
                    lambda item_id, product_id: (
                        items.pop(item_id) if item_id in items and items[item_id].product_id == product_id else None
                    ),
                    opening,
                    self._clock(),
                    decided.counts,
                )
                await self._save(cursor, batch, decided)
            except BaseException:
                await cursor.execute("rollback")
                raise
            await cursor.execute("commit")
        return decided

    async def _save(self, cursor: Any, batch: Batch, decided: Decided) -> None:
        touched = sorted(batch.touched)
        if touched:
            rows = [
                (warehouse_id, product_id, row[0], row[1], max(row[2], 0))
                for product_id in touched
                for warehouse_id, row in sorted(batch.touched[product_id].warehouses.items())
            ]
            await write_stock(cursor, rows)
            products = [
                (
                    product_id,
                    json.dumps({str(w): units for w, units in stock.on_order.items() if units}),
                    stock.requests_offset,
                    json.dumps({str(p): offset for p, offset in stock.orders_seen.items()}),
                    stock.next_seq,
                )
                for product_id, stock in sorted(batch.touched.items())
            ]
            values = ",".join(["(%s, %s::jsonb, %s, %s::jsonb, %s)"] * len(products))
            await cursor.execute(_SAVE_PRODUCTS.format(rows=values), [item for row in products for item in row])
        for out in batch.outcomes.values():
            decided.counts.update(out.counts)
            if out.scheduled:
                values = ",".join(["(%s, %s, %s, %s::jsonb)"] * len(out.scheduled))
                params = [
                    part
                    for item in out.scheduled
                    for part in (item.item_id, item.product_id, item.due_ms, json.dumps(item.to_json()))
                ]
                await cursor.execute(
                    f"insert into stock_schedule (item_id, product_id, due_ms, body) values {values}"
                    " on conflict (item_id) do nothing",
                    params,
                )
            if out.unscheduled:
                await cursor.execute("delete from stock_schedule where item_id = any(%s)", (out.unscheduled,))
            if out.backordered:
                values = ",".join(["(%s, %s, %s::jsonb)"] * len(out.backordered))
                params = [
                    part
                    for entry in out.backordered
                    for part in (int(entry.order["product_id"]), entry.seq, json.dumps(entry.to_json()))
                ]
                await cursor.execute(
                    f"insert into stock_backorders (product_id, seq, body) values {values} on conflict do nothing",
                    params,
                )
            if out.served:
                pairs = [tuple(int(part) for part in key.split(":")) for key in out.served]
                await cursor.execute(
                    "delete from stock_backorders"
                    " where (product_id, seq) in (select * from unnest(%s::bigint[], %s::int[]))",
                    ([pair[0] for pair in pairs], [pair[1] for pair in pairs]),
                )
            if out.records:
                values = ",".join(["(%s, %s, %s::jsonb)"] * len(out.records))
                params = [part for role, key, value in out.records for part in (role, key, json.dumps(value))]
                await cursor.execute(
                    f"insert into stock_outbox (role, key, value) values {values} returning id", params
                )
                decided.outbox.extend(row[0] for row in await cursor.fetchall())
                decided.records.extend(out.records)

    async def delivered(self, decided: Decided) -> None:
        """Kafka has the records: delete them from the outbox."""
        if not decided.outbox:
            return
        async with self._db().acquire() as conn, conn.cursor() as cursor:
            await cursor.execute("delete from stock_outbox where id = any(%s)", (decided.outbox,))

    async def undelivered(self) -> Decided:
        """Outbox rows older than ORPHAN_SECONDS (checked at most every ORPHAN_SECONDS): left by a dead worker."""
        left = Decided()
        now = time.monotonic()
        if self._orphans_checked and now - self._orphans_checked < ORPHAN_SECONDS:
            return left
        first = not self._orphans_checked
        self._orphans_checked = now
        age = "0 seconds" if first else f"{ORPHAN_SECONDS} seconds"
        async with self._db().acquire() as conn, conn.cursor() as cursor:
            await cursor.execute(
                "select id, role, key, value from stock_outbox where created_at < now() - %s::interval order by id",
                (age,),
            )
            for row_id, role, key, value in await cursor.fetchall():
                left.outbox.append(row_id)
                left.records.append((role, key, value))
        return left

    async def due(self, now_ms: int) -> list[tuple[int, str]]:
        """Items due by ``now_ms`` not requested in the last DUE_RESEND_MS; marks them requested."""
        async with self._db().acquire() as conn, conn.cursor() as cursor:
            await cursor.execute(
                "update stock_schedule set requested_ms = %s where item_id in (select item_id from stock_schedule"
                " where due_ms <= %s and (requested_ms is null or requested_ms < %s) order by due_ms limit %s)"
                " returning product_id, item_id",
                (now_ms, now_ms, now_ms - DUE_RESEND_MS, DUE_LIMIT),
            )
            found = [(int(row[0]), str(row[1])) for row in await cursor.fetchall()]
            await cursor.execute(
                "select (select count(*) from stock_backorders), (select count(*) from stock_schedule),"
                " (select count(*) from stock_outbox)"
            )
            backlog, scheduled, outbox = await cursor.fetchone()
            self._figures = {"backlog": int(backlog), "scheduled": int(scheduled), "outbox": int(outbox)}
        return found

    def figures(self) -> dict[str, int]:
        """Orders waiting for stock, items scheduled and outbox rows, as counted at the last timer tick."""
        return dict(self._figures)

    def state(self, product_id: int) -> StockState | None:
        """Not held in memory: the views read Postgres."""
        return None

    def changed(self) -> list[StockState]:
        """Nothing to mirror: Postgres is the stock."""
        return []

    def changed_again(self, product_ids: list[int]) -> None:
        """Nothing to mirror."""

    def _stockroom(self) -> Stockroom:
        assert self._room is not None, "used before start()"
        return self._room

    def _db(self) -> aiopg.Pool:
        assert self._pool is not None, "used before start()"
        return self._pool


async def _load_products(cursor: Any, product_ids: list[int], room: Stockroom) -> dict[int, ProductStock]:
    await cursor.execute(_LOCK, (product_ids,))
    rows = await cursor.fetchall()
    await cursor.execute(_PRODUCTS, (product_ids,))
    meta = {int(row[0]): row for row in await cursor.fetchall()}
    stocks = {product_id: ProductStock(product_id, room.sku(product_id)) for product_id in product_ids}
    for product_id, warehouse_id, on_hand, reserved, updated_ms in rows:
        stocks[int(product_id)].warehouses[int(warehouse_id)] = [int(on_hand), int(reserved), int(updated_ms)]
    for product_id, on_order, requests_offset, orders_seen, next_seq in meta.values():
        stock = stocks[int(product_id)]
        stock.on_order = {int(w): int(units) for w, units in on_order.items()}
        stock.requests_offset = int(requests_offset)
        stock.orders_seen = {int(p): int(offset) for p, offset in orders_seen.items()}
        stock.next_seq = int(next_seq)
    return stocks


async def _load_backlogs(cursor: Any, product_ids: list[int]) -> dict[int, list[Backorder]]:
    await cursor.execute(
        "select product_id, body from stock_backorders where product_id = any(%s) order by product_id, seq",
        (product_ids,),
    )
    backlogs: dict[int, list[Backorder]] = {}
    for product_id, body in await cursor.fetchall():
        backlogs.setdefault(int(product_id), []).append(Backorder.from_json(body))
    return backlogs


async def _take_items(cursor: Any, item_ids: list[str]) -> dict[str, Scheduled]:
    if not item_ids:
        return {}
    await cursor.execute("select item_id, body from stock_schedule where item_id = any(%s) for update", (item_ids,))
    return {str(item_id): Scheduled.from_json(str(item_id), body) for item_id, body in await cursor.fetchall()}


async def _new_openings(cursor: Any, change_ids: list[str]) -> set[str]:
    if not change_ids:
        return set()
    values = ",".join(["(%s)"] * len(change_ids))
    await cursor.execute(
        f"insert into inventory_applied_changes (change_id) values {values} on conflict do nothing returning change_id",
        change_ids,
    )
    return {str(row[0]) for row in await cursor.fetchall()}


__all__ = ["PostgresLedger"]
