"""The orders agent: decides each order's payment and forwards the order, keyed by product, to the stock agent.

Batches are taken without acknowledgement (``noack_take``) and acknowledged once the payments, the forwarded
orders and the dead letters they caused are acknowledged by Kafka. A redelivered order gives the same payment
(its draws come from its id) and the same request, which the stock agent recognises by the order's offset.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping

from faust import Stream
from faust.types import EventT

from agents.derived_truth import DerivedTruth
from agents.intake import Intake, deliver
from agents.requests import ORDER, headers_of, order_request
from app.avro import AvroCodec
from app.derivation import DerivationConfig, Stage, decide_payment, rng_for, validate_order
from app.derivation.agent_clock import AgentClock
from app.metrics import BatchMeter, agent_meters
from app.producer import EventProducer
from app.truth import header
from app.wire.headers import DUPLICATE_HEADER
from app.wire.roles import ORDERS, PAYMENTS

#: The agent's name in the x-datagen-source header.
AGENT = "orders"
#: Most orders in one batch, and the longest a batch waits to fill (seconds).
BATCH_MAX = 10_000
BATCH_WITHIN = 0.25


class OrdersAgent:
    """orders.v1 in; payments.v1 and stock requests out."""

    def __init__(
        self,
        intake: Intake,
        codec: AvroCodec,
        producer: EventProducer,
        topics: dict[str, str],
        requests_topic: str,
        config: DerivationConfig,
        counts: Counter[str],
        stopping: Callable[[], bool],
        products: Collection[int] = (),
        truth: DerivedTruth | None = None,
        clock: AgentClock | None = None,
    ) -> None:
        """``products``: the catalogue's product ids; an order of any other is dead-lettered before its payment.
        ``truth`` counts the payments sent (TRUTH_ENABLED); ``clock`` stamps them (the wall clock by default)."""
        self._clock = clock or AgentClock()
        self._intake = intake
        self._products = products
        self._codec = codec
        self._producer = producer
        self._topics = topics
        self._requests_topic = requests_topic
        self._config = config
        self._counts = counts
        self._stopping = stopping
        self._headers = headers_of(ORDER)
        self._truth = truth
        self._payment_headers = None if truth is None else truth.headers(AGENT)

    async def run(self, stream: Stream) -> None:
        """The agent's body, pipelined: while Kafka acknowledges one batch's records, the next is decided; a
        batch's events are acknowledged only after its records are delivered."""
        meters = agent_meters(stream.app)
        meters.producers["agents"] = self._producer.queued
        batches = meters.batches("orders")
        previous: asyncio.Task[bool] | None = None
        async for events in stream.noack_take(BATCH_MAX, within=BATCH_WITHIN):
            taken = time.perf_counter()
            for event in events:
                await self.take(event)
            decided = time.perf_counter()
            batches.decided(len(events), decided - taken)
            if previous is not None and not await previous:
                return  # stopping before Kafka had a batch's records: unacknowledged, decided again
            previous = asyncio.create_task(self._finish(stream, list(events), batches, decided))
            self._counts["order batches"] += 1
        if previous is not None:
            await previous

    async def _finish(self, stream: Stream, events: list[EventT], batches: BatchMeter, decided: float) -> bool:
        if not await deliver(self._producer, "orders agent", self._stopping):
            return False
        for event in events:
            await stream.ack(event)
        batches.delivered(time.perf_counter() - decided)
        return True

    def _validate(self, value: Mapping[str, object]) -> str | None:
        reason = validate_order(value)
        if reason is None and self._products and value["product_id"] not in self._products:
            reason = f"product_id={value['product_id']}: no such product"
        return reason

    async def take(self, event: EventT) -> None:
        """Decide one consumed record: its payment, and its stock request (or a dead letter). Nothing once the
        worker is stopping: the record stays unacknowledged and is decided again at the next start."""
        if self._stopping():
            return
        if header(event.message.headers, DUPLICATE_HEADER) is not None:
            self._counts["duplicates skipped"] += 1  # the generator's deliberate second copy: decided once
            return
        self._clock.saw(int(event.message.timestamp * 1000))
        order = await self._intake.value(event, self._topics[ORDERS], self._validate, "order", "invalid_order")
        if order is None:
            return
        order_id = str(order["order_id"])
        payment = decide_payment(order, self._config, rng_for(self._config.seed, order_id, Stage.PAYMENT))
        now_ms = self._clock.now_ms()
        send = self._producer.send_surely
        if payment is not None:
            encoded = self._codec.encode(PAYMENTS, payment)
            stamp = self._clock.stamp(payment.get("event_time"))
            send(self._topics[PAYMENTS], order_id.encode(), encoded, stamp, self._payment_headers)
            if self._truth is not None:
                self._truth.count(AGENT, PAYMENTS, payment, stamp)
            self._counts["payments"] += 1
        message = event.message
        request = order_request(order, payment, message.partition, message.offset)
        send(self._requests_topic, str(order["product_id"]).encode(), request, now_ms, self._headers)
        self._counts["orders decided"] += 1
