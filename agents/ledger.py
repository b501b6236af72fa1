"""The stock ledger: the one seam between the agents and where the canonical stock lives (CANON_INVENTORY).

``KafkaLedger`` (agents/kafka_ledger.py) keeps the stock in changelogged Faust tables; ``PostgresLedger``
(agents/pg_ledger.py) in Postgres rows. The stock agent hands either one a batch of requests and gets back the
records to send, already durable in an outbox; it tells the ledger when Kafka has them.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from agents.requests import CHANGE, DUE, OPENING, ORDER, OrderRequest
from app.inventory import StockState
from app.inventory.stockroom import Backorder, Outcome, ProductStock, Scheduled, StockReference, Stockroom

#: (role, key, value): a record the ledger decided, to be encoded and sent.
Record = tuple[str, str, dict[str, Any]]


def wall_ms() -> int:
    """The wall clock in epoch milliseconds: the agents' time when no simulated clock is given."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Request:
    """One request from the stock requests topic; ``body`` is an OrderRequest, a change dict or an item id."""

    partition: int
    offset: int
    product_id: int
    kind: str
    body: Any


@dataclass
class Decided:
    """Records decided by a batch (durable in the outbox), and what the ledger needs to forget them once sent."""

    records: list[Record] = field(default_factory=list)
    outbox: list[Any] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


class StockLedger(Protocol):
    """Decides batches of requests against the canonical stock, durably, before anything is sent."""

    async def start(self, reference: StockReference) -> None:
        """Open what the ledger needs, with the reference data loaded."""

    async def decide(self, requests: list[Request]) -> Decided:
        """Decide ``requests`` in order; on return the stock and the records to send are durable."""

    async def delivered(self, decided: Decided) -> None:
        """Kafka has acknowledged every record of ``decided``: drop them from the outbox."""

    async def undelivered(self) -> Decided:
        """Records left in the outbox by a worker that died before Kafka acknowledged them."""

    async def due(self, now_ms: int) -> list[tuple[int, str]]:
        """(product_id, item id) of scheduled items due by ``now_ms`` and not yet requested."""

    def figures(self) -> dict[str, int]:
        """Orders waiting for stock (``backlog``) and items scheduled (``scheduled``), where this worker sees them."""

    def state(self, product_id: int) -> StockState | None:
        """The product's stock as this worker holds it (kafka mode); None when unknown here."""

    def changed(self) -> list[StockState]:
        """Stock of products changed since the last call (for the mirror)."""

    def changed_again(self, product_ids: list[int]) -> None:
        """Products whose stock the mirror could not write: ``changed`` gives them again."""

    async def stop(self) -> None:
        """Close what ``start`` opened."""


@dataclass
class Batch:
    """A batch's requests decided in memory: the outcome by partition and the products they touched."""

    outcomes: dict[int, Outcome] = field(default_factory=lambda: defaultdict(Outcome))
    #: The first request offset of each partition: names the batch's outbox entries.
    first_offset: dict[int, int] = field(default_factory=dict)
    touched: dict[int, ProductStock] = field(default_factory=dict)


def run_requests(
    room: Stockroom,
    requests: list[Request],
    product: Callable[[int, int], ProductStock],
    backlog: Callable[[int], list[Backorder]],
    take_item: Callable[[str, int], Scheduled | None],
    opening: Callable[[ProductStock, dict[str, Any], Outcome], None],
    now_ms: int,
    counts: Counter[str],
) -> Batch:
    """Decide ``requests`` in order against the products ``product(product_id, partition)`` gives.

    A request at or below its product's ``requests_offset`` was applied before (a redelivery), and an order at or
    below ``orders_seen`` of its orders partition was decided before (a replay of the orders agent): both are
    skipped. ``take_item(item_id, product_id)`` hands over a scheduled item of that product that fell due (None,
    and the item stays where it is, when it was applied before, never existed or belongs to another product);
    ``opening`` applies an opening balance as the ledger needs.
    """
    batch = Batch()
    for request in requests:
        stock = product(request.product_id, request.partition)
        if request.offset <= stock.requests_offset:
            counts["requests replayed"] += 1
            continue
        if request.product_id not in batch.touched:
            stock.done = []
            batch.touched[request.product_id] = stock
        stock.requests_offset = request.offset
        batch.first_offset.setdefault(request.partition, request.offset)
        out = batch.outcomes[request.partition]
        if request.kind == ORDER:
            body: OrderRequest = request.body
            if body.offset <= stock.orders_seen.get(body.partition, -1):
                counts["orders replayed"] += 1
                continue
            stock.orders_seen[body.partition] = body.offset
            room.order(stock, backlog(request.product_id), body.order, body.payment, out)
        elif request.kind == CHANGE:
            room.change(stock, backlog(request.product_id), request.body, out)
        elif request.kind == OPENING:
            opening(stock, request.body, out)
        elif request.kind == DUE:
            item = take_item(str(request.body), request.product_id)
            if item is None:
                counts["due requests for nothing scheduled"] += 1
                continue
            room.due(stock, backlog(request.product_id), item, now_ms, out)
    return batch
