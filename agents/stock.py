"""The stock agent: decides every request of the stock requests topic against the ledger, in batches.

Per batch: the requests are read (or dead-lettered), the ledger decides them and makes the outcome durable, the
records go to Kafka, and only when Kafka has acknowledged them are the batch's events acknowledged. A worker
that dies anywhere in between leaves its records in the ledger's outbox, sent again when the partitions are
next loaded, and its events uncommitted, decided again identically.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import psycopg2
from faust import Stream
from faust.types import EventT

from agents.derived_truth import DerivedTruth
from agents.intake import Intake, deliver
from agents.ledger import Decided, Request, StockLedger
from agents.requests import CHANGE, DUE, OPENING, ORDER, OrderRequest, headers_of, kind_of, read_order_request
from app.avro import AvroCodec
from app.derivation import validate_order
from app.derivation.agent_clock import AgentClock
from app.inventory import validate_change
from app.inventory.stockroom import StockReference
from app.metrics import BatchMeter, agent_meters
from app.producer import EventProducer
from app.truth import header
from app.wire.headers import DUPLICATE_HEADER
from app.wire.roles import INVENTORY_CHANGES
from schemas.symbols import RETURN, SALE

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The agent's name in the x-datagen-source header.
AGENT = "stock"
#: Most requests in one batch, and the longest a batch waits to fill (seconds).
BATCH_MAX = 10_000
BATCH_WITHIN = 0.5
#: Change types the stock agent decides itself, never takes as a request: why such a request is dead-lettered.
DECIDED_CHANGES = {
    SALE: "a SALE is decided from an order",
    RETURN: "a RETURN is decided from a shipped order (to the warehouse that shipped it, once)",
}
#: The errors of a ledger database that does not answer (stopped, restarting, a connection cut) or that rolled the
#: transaction back (a deadlock): the step is tried again once it answers. Nothing of a failed transaction was
#: committed; if only the commit's answer was lost, the ledger skips the requests it applied, and the outbox, read
#: again first, holds their records.
UNREACHABLE: tuple[type[BaseException], ...] = (
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    OSError,
    asyncio.TimeoutError,
)
#: The longest pause between two tries while the ledger's database does not answer (seconds).
RETRY_MAX_SECONDS = 5.0


class StockAgent:
    """Stock requests in; shipments and inventory changes out, through the ledger's outbox."""

    def __init__(
        self,
        ledger: StockLedger,
        intake: Intake,
        codec: AvroCodec,
        producer: EventProducer,
        topics: dict[str, str],
        requests_topic: str,
        counts: Counter[str],
        stopping: Callable[[], bool],
        truth: DerivedTruth | None = None,
        clock: AgentClock | None = None,
    ) -> None:
        """``truth`` counts the shipments and inventory changes sent (TRUTH_ENABLED); ``clock`` stamps them and says
        what is due (the wall clock by default; the ledger must read the same clock)."""
        self._clock = clock or AgentClock()
        self._ledger = ledger
        self._stopping = stopping
        self._intake = intake
        self._codec = codec
        self._producer = producer
        self._topics = topics
        self._requests_topic = requests_topic
        self._counts = counts
        self._reference: StockReference | None = None
        self._due_headers = headers_of(DUE)
        self._truth = truth
        self._record_headers = None if truth is None else truth.headers(AGENT)

    def start(self, reference: StockReference) -> None:
        """Known products and warehouses, to reject requests about others."""
        self._reference = reference

    async def run(self, stream: Stream[Any]) -> None:
        """The agent's body, pipelined: while Kafka acknowledges one batch's records, the next is decided.

        A batch's events are acknowledged only after its records are delivered, and records go out in the order
        they were decided. An error while deciding ends the process unacknowledged: a restart decides again.
        """
        meters = agent_meters(stream.app)
        meters.producers["agents"] = self._producer.queued
        batches = meters.batches("stock")
        previous: asyncio.Task[bool] | None = None
        async for events in stream.noack_take(BATCH_MAX, within=BATCH_WITHIN):
            taken = time.perf_counter()
            try:
                decided = await self._when_reachable(partial(self.take, events), "deciding a batch")
            except Exception:
                log.critical("stock agent failed; exiting without acknowledging the batch", exc_info=True)
                logging.shutdown()
                os._exit(70)
            decided_at = time.perf_counter()
            batches.decided(len(events), decided_at - taken)
            if previous is not None and not await previous:
                return  # stopping before Kafka had a batch's records: unacknowledged, decided again
            previous = asyncio.create_task(self._finish(stream, list(events), decided, batches, decided_at))
        if previous is not None:
            await previous

    async def take(self, events: Sequence[EventT]) -> list[Decided]:
        """Decide a batch of events durably and hand its records to the producer (with any an outbox still held)."""
        batches = []
        left = await self._ledger.undelivered()
        if left.records:
            log.info("sending %d records a previous worker left in the outbox", len(left.records))
            self._produce(left)
            batches.append(left)
        requests = [request for event in events if (request := await self._request(event)) is not None]
        decided = await self._ledger.decide(requests)
        self._counts.update(decided.counts)
        self._counts["stock batches"] += 1
        self._produce(decided)
        batches.append(decided)
        return batches

    async def _finish(
        self, stream: Stream[Any], events: list[EventT], batches: list[Decided], meter: BatchMeter, decided_at: float
    ) -> bool:
        """Once Kafka has the batch's records: forget them in the outbox, acknowledge the events. False if the
        worker began to stop first (nothing acknowledged)."""
        if not await deliver(self._producer, "stock agent", self._stopping):
            return False  # still in the outbox: sent again at the next start
        for decided in batches:
            await self._when_reachable(partial(self._ledger.delivered, decided), "clearing the outbox")
        for event in events:
            await stream.ack(event)
        meter.delivered(time.perf_counter() - decided_at)
        return True

    async def _when_reachable(self, step: Callable[[], Awaitable[T]], what: str) -> T:
        """``step()``, tried again while the ledger's database does not answer (see UNREACHABLE), with backoff."""
        delay = 0.5
        while True:
            try:
                return await step()
            except UNREACHABLE as error:
                if self._stopping():
                    raise
                first_line = (str(error).strip().splitlines() or [""])[0][:200]
                log.warning(
                    "stock agent: %s failed (%s: %s); trying again in %.1f s",
                    what,
                    type(error).__name__,
                    first_line,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def send_due(self) -> None:
        """The schedule timer: a request for each item that fell due, to the item's product's partition. While the
        ledger's database does not answer, nothing is sent: the items are still due at the next tick."""
        now_ms = self._clock.now_ms()
        try:
            due = await self._ledger.due(now_ms)
        except UNREACHABLE as error:
            log.warning("stock agent: reading the due items failed (%s); next tick", type(error).__name__)
            return
        for product_id, item_id in due:
            self._producer.send_surely(
                self._requests_topic, str(product_id).encode(), item_id.encode(), now_ms, self._due_headers
            )
        self._producer.serve(0)

    def _produce(self, decided: Decided) -> None:
        """Hand the records to the producer; none once the worker is stopping (they stay in the outbox)."""
        if self._stopping():
            return
        encode, send, headers = self._codec.encode, self._producer.send_surely, self._record_headers
        stamps = [self._clock.stamp(value.get("event_time")) for _, _, value in decided.records]
        for (role, key, value), at in zip(decided.records, stamps, strict=True):
            send(self._topics[role], key.encode(), encode(role, value), at, headers)
        if self._truth is not None:
            count = self._truth.count
            for (role, _, value), at in zip(decided.records, stamps, strict=True):
                count(AGENT, role, value, at)

    async def _request(self, event: EventT) -> Request | None:
        message = event.message
        self._clock.saw(int(message.timestamp * 1000))
        if header(message.headers, DUPLICATE_HEADER) is not None:
            self._counts["duplicates skipped"] += 1  # the generator's deliberate second copy: decided once
            return None
        try:
            product_id = int(message.key or b"")
        except ValueError:
            key = message.key or b""
            shown = repr(key[:40]) + (f" ({len(key)} bytes)" if len(key) > 40 else "")
            self._intake.dead_letter(event, f"key {shown}: expected a product id", "bad_key")
            return None
        assert self._reference is not None, "used before start()"
        if product_id not in self._reference.skus:
            self._intake.dead_letter(event, f"key {product_id}: no such product", "unknown_product")
            return None
        kind = kind_of(message.headers)
        body: Any
        if kind == ORDER:
            try:
                body = read_order_request(event.value)
            except (ValueError, KeyError, TypeError) as error:
                error_text = f"invalid order request: {type(error).__name__}: {error}"
                self._intake.dead_letter(event, error_text, "invalid_order_request")
                return None
            reason = self._bad_order(body, product_id)
            if reason is not None:  # only the orders agent writes these, but the topic is open to anyone
                self._intake.dead_letter(event, f"invalid order request: {reason}", "invalid_order_request")
                return None
        elif kind == DUE:
            body = bytes(event.value or b"").decode(errors="replace")
        else:
            if kind == OPENING:
                body = _json_change(event.value)
                reason = "not a JSON inventory change" if body is None else validate_change(body)
                if reason is not None:
                    self._intake.dead_letter(event, f"invalid opening balance: {reason}", "invalid_opening_balance")
                    return None
            else:
                topic = self._topics[INVENTORY_CHANGES]
                body = await self._intake.value(event, topic, validate_change, "change", "invalid_change")
                if body is None:
                    return None
            reason = self._unknown(body, product_id)
            if reason is not None:
                self._intake.dead_letter(event, f"invalid inventory change: {reason}", "invalid_change")
                return None
            decided_here = DECIDED_CHANGES.get(body["change_type"]) if kind == CHANGE else None
            if decided_here is not None:  # a SALE or a RETURN only comes from an order this agent decided
                self._intake.dead_letter(event, f"invalid inventory change: {decided_here}", "invalid_change")
                return None
        return Request(message.partition, message.offset, product_id, kind, body)

    def _bad_order(self, request: OrderRequest, product_id: int) -> str | None:
        """Why a forwarded order cannot be decided (None when it can): what the orders agent checked, checked again."""
        reason = validate_order(request.order)
        if reason is not None:
            return reason
        if request.payment is not None and not isinstance(request.payment, dict):
            return f"payment {type(request.payment).__name__}: expected an object or null"
        if request.partition < 0 or request.offset < 0:
            return f"orders.v1 position {request.partition}/{request.offset}: expected numbers >= 0"
        order_product = request.order["product_id"]
        if order_product != product_id:
            return f"product_id={order_product} under the key of product {product_id}"
        return None

    def _unknown(self, change: Mapping[str, Any], product_id: int) -> str | None:
        reference = self._reference
        assert reference is not None, "used before start()"
        if change["product_id"] != product_id:
            return f"product_id={change['product_id']} under the key of product {product_id}"
        if change["product_id"] not in reference.skus:
            return f"product_id={change['product_id']}: no such product"
        if change["warehouse_id"] not in reference.warehouses:
            return f"warehouse_id={change['warehouse_id']}: no such warehouse"
        return None


def _json_change(raw: bytes | None) -> dict[str, Any] | None:
    try:
        value = json.loads(raw or b"")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
