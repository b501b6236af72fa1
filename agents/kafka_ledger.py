"""The Kafka-canonical ledger (CANON_INVENTORY=kafka): the stock in changelogged Faust tables on RocksDB.

Four tables (``tables.ledger_tables``), all partitioned like the stock requests topic: a product's entries live
in its partition.

A batch is decided in memory, then made durable in two steps, each awaited on Faust's producer: first the
outbox and the new schedule and backorder entries, then the product values. Entries a batch finished
(applied, shipped, cancelled, sent) are deleted only after the product values that record it are durable; a
product value names the entries its last write finished (``ProductStock.done``), so a worker that dies before
the deletes does not apply them again. Requests are applied once: a product value holds the offset of the last
request it applied and, per orders.v1 partition, of the last order. A batch that dies before its product values
are durable is decided again from the same requests and the same durable values, so identically: what its
outbox already sent is sent again, byte for byte.
"""

from __future__ import annotations

import heapq
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from faust.types import TableT
from mode import BaseSignalT

from agents.ledger import Batch, Decided, Record, Request, run_requests, wall_ms
from app.derivation import DerivationConfig
from app.inventory import StockState
from app.inventory.stockroom import Backorder, ProductStock, Scheduled, StockReference, Stockroom
from tables import in_partition, ledger_tables

log = logging.getLogger(__name__)

#: Records per outbox value, so one value stays well under Kafka's 1 MB message limit.
OUTBOX_CHUNK = 1_000
#: A due request not answered within this many seconds is sent again.
DUE_RESEND_MS = 30_000


class KafkaLedger:
    """The stock of the partitions this worker holds, in memory, with the Faust tables as its durable image."""

    def __init__(
        self,
        app: faust.App,
        source_topic: str,
        partitions: int,
        config: DerivationConfig,
        timeout_ms: int,
        before_close: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """``before_close`` is awaited when the stock table stops: the agents decide nothing after it; ``clock``:
        epoch ms of the agents' time, at which a batch is decided (the wall clock by default)."""
        self._clock = clock or wall_ms
        self._app = app
        self._source = source_topic
        self._config = config
        self._timeout_ms = timeout_ms
        tables = ledger_tables(app, partitions, before_close)
        self.stock, self.backorders = tables.stock, tables.backorders
        self.schedule, self.outbox = tables.schedule, tables.outbox
        self._room: Stockroom | None = None
        self._reference: StockReference | None = None
        self._cache: dict[int, ProductStock] = {}
        self._backlogs: dict[int, list[Backorder]] = defaultdict(list)
        self._items: dict[str, int] = {}  # item id -> product id; the item itself stays in the schedule table
        self._heap: list[tuple[int, str]] = []
        self._requested: dict[str, int] = {}  # item id -> when its due request was sent
        self._deletes: list[tuple[TableT, int, str]] = []  # finished entries, deleted once their products are durable
        self._changed: set[int] = set()
        self._loaded = False
        self._recovered = False  # the tables of the current assignment are recovered: memory may be loaded
        self._resend = False
        app.on_rebalance_complete.connect(self._on_recovered)
        app.on_partitions_assigned.connect(self._on_rebalance)
        app.on_partitions_revoked.connect(self._on_rebalance)

    async def start(self, reference: StockReference) -> None:
        """Ready to decide once the reference data is loaded."""
        self._reference = reference
        self._room = Stockroom(reference, self._config, self._timeout_ms)
        self._app.producer.buffer.max_messages = 1_000_000  # a batch writes hundreds of keys at once

    async def stop(self) -> None:
        """Nothing to close: the tables close with the worker."""

    # ----- deciding

    async def decide(self, requests: list[Request]) -> Decided:
        """Decide ``requests`` in order, then make the outcome durable (see the module's docstring)."""
        if not self._loaded:
            self._load()
        decided = Decided()
        batch = run_requests(
            self._stockroom(),
            requests,
            self._product,
            self._backlogs.__getitem__,
            self._take_item,
            self._stockroom().opening,
            self._clock(),
            decided.counts,
        )
        await self._persist(batch, decided)
        return decided

    def _take_item(self, item_id: str, product_id: int) -> Scheduled | None:
        if self._items.get(item_id) != product_id:
            return None  # applied before, never scheduled, or another product's (a due request under a wrong key)
        self._requested.pop(item_id, None)
        del self._items[item_id]
        stored = self.schedule.get(item_id)
        return Scheduled.from_json(item_id, stored) if stored else None

    async def _persist(self, batch: Batch, decided: Decided) -> None:
        producer = self._app.producer
        self._delete_finished()
        for partition, out in batch.outcomes.items():
            with in_partition(self._source, partition):
                for start in range(0, len(out.records), OUTBOX_CHUNK):
                    key = f"{partition}:{batch.first_offset[partition]}:{start}"
                    self.outbox[key] = out.records[start : start + OUTBOX_CHUNK]
                    decided.outbox.append((partition, key))
                for item in out.scheduled:
                    self.schedule[item.item_id] = item.to_json()
                for waiting in out.backordered:
                    self.backorders[waiting.key] = waiting.to_json()
            decided.records.extend(out.records)
            decided.counts.update(out.counts)
        await producer.flush()
        for product_id, stock in batch.touched.items():
            with in_partition(self._source, stock.partition):
                self.stock[str(product_id)] = stock.to_json()
        await producer.flush()
        self._changed.update(batch.touched)
        for partition, out in batch.outcomes.items():
            for item in out.scheduled:
                self._items[item.item_id] = item.product_id
                heapq.heappush(self._heap, (item.due_ms, item.item_id))
            self._deletes.extend((self.schedule, partition, item_id) for item_id in out.unscheduled)
            self._deletes.extend((self.backorders, partition, key) for key in out.served)

    async def delivered(self, decided: Decided) -> None:
        """Kafka has the records of ``decided``: delete their outbox values, and the entries the batch finished.

        The deletes are not awaited: one lost in a crash is done again (finished entries are named by the product
        values, an outbox value is only sent once more).
        """
        self._deletes.extend((self.outbox, partition, key) for partition, key in decided.outbox)
        self._delete_finished()

    def _delete_finished(self) -> None:
        deletes, self._deletes = self._deletes, []
        for table, partition, key in deletes:
            with in_partition(self._source, partition):
                table.pop(key, None)

    async def undelivered(self) -> Decided:
        """Once after each load, the outbox as the tables hold it: what a worker that died may not have sent."""
        if not self._loaded:
            self._load()
        left = Decided()
        if not self._resend:
            return left
        self._resend = False
        owned = self._owned()
        for key, records in list(self.outbox.items()):
            partition = int(str(key).split(":")[0])
            if partition in owned:
                left.records.extend((str(role), str(name), dict(value)) for role, name, value in records)
                left.outbox.append((partition, key))
        return left

    # ----- the schedule

    async def due(self, now_ms: int) -> list[tuple[int, str]]:
        """Items due by ``now_ms`` whose request is not on its way (or was sent DUE_RESEND_MS ago).

        Loads memory first once the tables are recovered, so that a worker no request reaches still sends what
        falls due (and mirrors what a worker that died may not have).
        """
        if not self._loaded and self._recovered:
            self._load()
        found: list[tuple[int, str]] = []
        while self._heap and self._heap[0][0] <= now_ms:
            _, item_id = heapq.heappop(self._heap)
            product_id = self._items.get(item_id)
            if product_id is not None and item_id not in self._requested:
                found.append((product_id, item_id))
                self._requested[item_id] = now_ms
        for item_id, sent_ms in list(self._requested.items()):
            if now_ms - sent_ms > DUE_RESEND_MS and item_id in self._items:
                found.append((self._items[item_id], item_id))
                self._requested[item_id] = now_ms
        return found

    def backlog(self) -> int:
        """Orders waiting for stock in the partitions held here."""
        return sum(len(waiting) for waiting in self._backlogs.values())

    def figures(self) -> dict[str, int]:
        """Orders waiting for stock and items scheduled, in the partitions held here."""
        if not self._loaded:
            return {}  # not known until the tables are recovered and read
        return {"backlog": self.backlog(), "scheduled": len(self._items), "outbox pending deletes": len(self._deletes)}

    # ----- reads

    def state(self, product_id: int) -> StockState | None:
        """The product's stock: from memory, else from the table."""
        cached = self._cache.get(product_id)
        if cached is not None:
            return cached.to_state()
        stored = self.stock.get(str(product_id))
        return ProductStock.from_json(stored).to_state() if stored else None

    def product_ids(self) -> set[int]:
        """Products whose stock this worker's table holds."""
        return {int(key) for key in self.stock} | set(self._cache)

    def changed(self) -> list[StockState]:
        """Stock of the products changed since the last call."""
        changed, self._changed = self._changed, set()
        return [state for product_id in sorted(changed) if (state := self.state(product_id)) is not None]

    def changed_again(self, product_ids: list[int]) -> None:
        """Products the mirror could not write: ``changed`` gives them again."""
        self._changed.update(product_ids)

    def requested_unanswered(self) -> int:
        """Due requests sent and not yet applied."""
        return len(self._requested)

    # ----- memory and tables

    def _stockroom(self) -> Stockroom:
        assert self._room is not None, "used before start()"
        return self._room

    def _product(self, product_id: int, partition: int) -> ProductStock:
        stock = self._cache.get(product_id)
        if stock is None:
            stored = self.stock.get(str(product_id))
            if stored:
                stock = ProductStock.from_json(stored)
            else:
                stock = ProductStock(product_id, self._stockroom().sku(product_id))
            self._cache[product_id] = stock
        stock.partition = partition
        return stock

    def _load(self) -> None:
        """Memory from the tables of the partitions held now: the backlog, the schedule, finished entries."""
        self._cache.clear()
        self._backlogs.clear()
        self._items.clear()
        self._heap.clear()
        self._requested.clear()
        owned = self._owned()
        states = {
            int(key): stock
            for key, value in self.stock.items()
            if value and (stock := ProductStock.from_json(value)).partition in owned
        }
        finished = {entry for stock in states.values() for entry in stock.done}
        for stock in states.values():
            for key in stock.done:
                self._deletes.append((self.schedule, stock.partition, key))
                self._deletes.append((self.backorders, stock.partition, key))
        for key, value in list(self.backorders.items()):
            waiting = Backorder.from_json(value)
            product_id = int(waiting.order["product_id"])
            owner = states.get(product_id)
            if key in finished or owner is None or waiting.seq >= owner.next_seq:
                continue  # finished, or written by a batch whose product values never became durable
            self._backlogs[product_id].append(waiting)
        for waiting_list in self._backlogs.values():
            waiting_list.sort(key=lambda entry: entry.seq)
        for key, value in list(self.schedule.items()):
            if key in finished:
                continue
            item = Scheduled.from_json(str(key), value)
            if item.product_id not in states:
                continue  # a product of a partition this worker holds as a standby, or none
            self._items[item.item_id] = item.product_id
            self._heap.append((item.due_ms, item.item_id))
        heapq.heapify(self._heap)
        self._changed.update(states)  # the mirror writes them all once: a worker that died may not have
        self._loaded = True
        self._resend = True
        log.info(
            "stock ledger loaded: %d products, %d backorders, %d scheduled",
            len(states),
            self.backlog(),
            len(self._items),
        )

    def _owned(self) -> set[int]:
        """The partitions of the requests topic this worker actively holds (not its standby replicas)."""
        actives = self._app.assignor.assigned_actives()
        return {tp.partition for tp in actives if tp.topic == self._source}

    def _on_rebalance(self, sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        """Partitions moved: memory is reloaded from the tables once they are recovered, or by the next batch."""
        self._loaded = False
        self._recovered = False

    def _on_recovered(self, sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        self._recovered = True


__all__ = ["KafkaLedger", "Record"]
