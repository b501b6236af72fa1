"""The fulfilment agents (CANON_INVENTORY=kafka): payments, shipments and the event-sourced stock table.

``orders`` decodes each order, dead-letters what it cannot use, decides the payment and passes the order on,
keyed by product, to ``stock``. ``stock`` reads that topic together with the inventory changes, which are keyed by
product too, so one product's orders and changes meet in one partition, in order: it folds every change into the
``stock`` table in the topic's order, ships what the stock can serve (a SALE change, pending from its decision until
it comes back from the topic and is folded like any other), backorders what it cannot, and schedules returns and
restocks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import faust
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from faust.types import EventT, StreamT, TableT

from app.avro import AvroCodec
from app.dead_letters import dead_letter_headers
from app.decoding import RecordDecoder, RegistryUnavailable, UndecodableRecord
from app.derivation import (
    DerivationConfig,
    Fulfilment,
    ShipmentDecision,
    Stage,
    decide_payment,
    decide_return,
    decide_shipment,
    inventory_change,
    restock_change,
    restock_needed,
    rng_for,
    validate_order,
)
from app.inventory import SALE, StockState, apply, available_after, validate_change
from app.producer import EventProducer
from app.settings import Settings
from db.mirror import mirror_stock
from db.pg_inventory import PostgresInventory
from db.stock import StockReference
from tables import rocksdict_table

log = logging.getLogger(__name__)

#: How often due returns and restocks are sent.
SCHEDULE_SECONDS = 1.0
#: How often the mirror writes changed stock to Postgres (MIRROR_INVENTORY_TO_DB=true).
MIRROR_SECONDS = 1.0
#: The change id prefix of the opening balances (the seeded stock as RESTOCK changes).
OPENING = "opening-"
#: How long to wait before asking the registry again while it cannot be reached.
REGISTRY_PAUSE = 2.0


def _millis(value: Mapping[str, Any]) -> dict[str, Any]:
    """The decoded value with its timestamps as epoch milliseconds, as the pure core takes them."""
    return {key: int(item.timestamp() * 1000) if isinstance(item, datetime) else item for key, item in value.items()}


class FulfilmentAgents:
    """The two agents, their tables and the timer that sends scheduled changes."""

    def __init__(
        self, app: faust.App, settings: Settings, registry: SchemaRegistryClient, counts: Counter[str]
    ) -> None:
        """``counts`` receives what the agents do (shown by ``/stats/``)."""
        self._settings = settings
        self._topics = settings.topics()
        self._decoder = RecordDecoder(registry)
        self._codec = AvroCodec(registry, self._topics)
        self._config = DerivationConfig.from_settings(settings, lead_time_scale=settings.lead_time_scale)
        self._producer: EventProducer | None = None
        self._pg: PostgresInventory | None = None  # CANON_INVENTORY=postgres: the stock lives there
        self.reference: StockReference | None = None
        self._ready = asyncio.Event()
        self._sent_scheduled: set[str] = set()
        self._unmirrored: set[str] = set()  # products whose stock changed since the mirror last wrote
        self._mirror_lock = asyncio.Lock()  # one write at a time, in order: a later state never lands first
        self.counts = counts
        partitions = settings.topic_partitions
        # The mirror's last write runs when the table stops: after the streams have drained, before the store closes.
        flush = self._flush_mirror if settings.mirror_inventory_to_db else None
        self.stock: TableT = rocksdict_table(app, "stock", partitions=partitions, before_close=flush)
        self.backorders: TableT = rocksdict_table(app, "backorders", partitions=partitions)
        self.scheduled: TableT = rocksdict_table(app, "scheduled", partitions=partitions)
        # Our own SALEs from their decision until they come back from the topic, [change_id, warehouse_id, units]:
        # decisions take them from the stock; the table folds each when it comes back, in the topic's order.
        self.echoes: TableT = rocksdict_table(app, "echoes", partitions=partitions)
        self._by_product_name = f"{settings.app_id}-orders-by-product"
        # internal=True: Faust creates these before it subscribes (the broker does not auto-create topics).
        source: dict[str, Any] = {
            "partitions": partitions,
            "replicas": settings.topic_replication_factor,
            "key_serializer": "raw",
            "value_serializer": "raw",
            "internal": True,
        }
        self.by_product = app.topic(self._by_product_name, **source)
        orders = app.topic(self._topics["orders"], **source)
        stock_inputs = app.topic(self._by_product_name, self._topics["inventory_changes"], **source)
        app.agent(orders, name="orders")(self._orders)
        app.agent(stock_inputs, name="stock")(self._stock)
        app.timer(SCHEDULE_SECONDS, name="send-scheduled")(self._send_scheduled)
        if settings.mirror_inventory_to_db:
            app.timer(MIRROR_SECONDS, name="mirror")(self.mirror)

    async def start(self, reference: StockReference) -> None:
        """Begin work with the reference data; on the first run, open the stock with the seeded balances."""
        self.reference = reference
        self._producer = EventProducer(
            self._settings.kafka_bootstrap,
            client_id=f"{self._settings.app_id}-agents",
            queue_max=self._settings.producer_queue_max,
        )
        if self._settings.canon_inventory == "postgres":
            self._pg = await PostgresInventory.open(self._settings.pg_dsn.get_secret_value())
        if await asyncio.to_thread(self._changes_topic_is_empty):
            opened = await self._send_opening_balances(reference)
            log.info("inventory opened from the seeded stock: %d opening RESTOCK changes", opened)
        await asyncio.to_thread(self._producer.flush, 30.0)
        self._ready.set()

    # ----- the orders agent

    async def _orders(self, stream: StreamT) -> None:
        async for event in stream.events():
            await self._ready.wait()
            order = await self._valid(event, validate_order, "order")
            if order is None:
                continue
            payment = decide_payment(order, self._config, rng_for(self._config.seed, order["order_id"], Stage.PAYMENT))
            if payment is not None:
                self._send("payments", order["order_id"], payment)
            forwarded = json.dumps({"order": order, "payment": payment}).encode()
            self._sender().send_surely(
                self._by_product_name, str(order["product_id"]).encode(), forwarded, order["event_time"]
            )
            self._sender().serve(0)

    # ----- the stock agent

    async def _stock(self, stream: StreamT) -> None:
        async for event in stream.events():
            await self._ready.wait()
            if event.message.topic == self._by_product_name:
                forwarded = json.loads(event.value)
                await self._fulfil(forwarded["order"], forwarded["payment"], not_before_ms=None, retry=False)
                continue
            change = await self._valid(event, validate_change, "inventory change")
            if change is None:
                continue
            await self._fold(change)
            if change["change_type"] in ("RESTOCK", "RETURN"):
                await self._retry_backorders(change["product_id"], change["event_time"])
            self._sender().serve(0)

    async def _fulfil(
        self, order: dict[str, Any], payment: dict[str, Any] | None, *, not_before_ms: int | None, retry: bool
    ) -> bool:
        """Ship ``order`` if its stock allows; backorder it if not (unless it is a retry). True when shipped."""
        key = str(order["product_id"])
        rng = rng_for(self._config.seed, order["order_id"], Stage.SHIPMENT)
        warehouses = self._reference_data().warehouses

        def decide(available: Mapping[int, int]) -> ShipmentDecision:
            return decide_shipment(
                order, payment, available, warehouses, self._config, rng, not_before_ms=not_before_ms
            )

        if self._pg is None:  # the table, with our SALEs still on their way through the topic taken
            before, pending = self._state(key), self.echoes.get(key) or []
            decision = decide(available_after(before, pending))
        else:
            decision, before = await self._pg_decide(
                int(order["product_id"]), lambda state: decide(state.available() if state is not None else {})
            )
        if decision.fulfilment == Fulfilment.BACKORDERED:
            if not retry:
                self.backorders[key] = [*(self.backorders.get(key) or []), {"order": order, "payment": payment}]
                self.counts["backordered"] += 1
            return False
        if decision.fulfilment != Fulfilment.SHIPPED:
            self.counts[f"not shipped: {decision.reason}"] += 1
            return False
        assert decision.shipment is not None
        assert decision.sale is not None
        self._send("shipments", order["order_id"], decision.shipment)
        self._send("inventory_changes", key, decision.sale)
        sale = decision.sale
        warehouse_id, sale_id = int(str(sale["warehouse_id"])), str(sale["change_id"])
        if self._pg is None:
            # Pending until the topic brings it back: the table folds it then, in the topic's order, as the fold of
            # the topic does. Folded now, it could clamp a DAMAGE the topic puts before it (see app.inventory.fold).
            redelivered = any(item[0] == sale_id for item in pending) or (
                before is not None and before.has_applied(sale_id)
            )
            if not redelivered and before is not None:
                pending = [*pending, [sale_id, warehouse_id, -int(str(sale["delta"]))]]
                self.echoes[key] = pending
                self._maybe_restock(before, available_after(before, pending), warehouse_id, sale)
        elif before is not None:  # Postgres took the SALE inside the decision's transaction
            self._maybe_restock(before, apply(before, sale).available(), warehouse_id, sale)
        self.counts["shipped"] += 1
        returned = decide_return(
            order, decision.shipment, self._config, rng_for(self._config.seed, order["order_id"], Stage.RETURN)
        )
        if returned is not None:
            self._schedule(key, returned.due_ms, returned.change)
        return True

    async def _pg_decide(
        self, product_id: int, decide: Callable[[StockState | None], ShipmentDecision]
    ) -> tuple[ShipmentDecision, StockState]:
        assert self._pg is not None
        pg = self._pg

        async def decision(cursor: Any, state: StockState) -> tuple[ShipmentDecision, StockState]:
            made = decide(state)
            if made.fulfilment == Fulfilment.SHIPPED and made.sale is not None:
                await pg.take(cursor, made.sale)
            return made, state

        return await pg.decide(product_id, decision)

    async def _fold(self, change: dict[str, Any]) -> None:
        """Fold ``change``, read from the topic: every change in the topic's order, our own SALEs included."""
        key = str(change["product_id"])
        own_sale = False
        if self._pg is None:
            pending = self.echoes.get(key) or []
            if change["change_type"] == SALE:
                still = [item for item in pending if item[0] != change["change_id"]]
                if len(still) != len(pending):
                    self.echoes[key] = pending = still
                    own_sale = True  # back from the topic; its restock was considered when it was decided
            state = self._state(key)
            folded: StockState | None = apply(state, change)
            if folded is state:
                return  # a redelivery
            assert folded is not None
            self.stock[key] = folded.to_dict()
            self._unmirrored.add(key)
            available = available_after(folded, pending)  # what the restock policy sees, as decisions do
        elif str(change["change_id"]).startswith(OPENING):
            return  # Postgres holds the seeded stock, and start() marked these applied before sending them
        else:
            folded = await self._pg.apply(change)
            if folded is None:
                return  # applied before
            available = folded.available()
        self._forget_scheduled(key, str(change["change_id"]))
        if change["delta"] < 0 and not own_sale:
            self._maybe_restock(folded, available, int(change["warehouse_id"]), change)

    async def _retry_backorders(self, product_id: int, not_before_ms: int) -> None:
        key = str(product_id)
        waiting = self.backorders.get(key) or []
        if not waiting:
            return
        still = [
            item
            for item in waiting
            if not await self._fulfil(item["order"], item["payment"], not_before_ms=not_before_ms, retry=True)
        ]
        if len(still) != len(waiting):
            self.backorders[key] = still

    def _maybe_restock(
        self, state: StockState, available: Mapping[int, int], warehouse_id: int, trigger: Mapping[str, Any]
    ) -> None:
        """Reorder ``state``'s product at ``warehouse_id`` if ``available`` (by warehouse) calls for it."""
        trigger_id, now_ms = str(trigger["change_id"]), int(trigger["event_time"])
        policy = self._reference_data().policies.get((state.product_id, warehouse_id))
        if policy is None:
            return
        key = str(state.product_id)
        on_order = sum(
            int(change["delta"])
            for _, change in self.scheduled.get(key) or []
            if change["change_type"] == "RESTOCK" and change["warehouse_id"] == warehouse_id
        )
        quantity = restock_needed(available.get(warehouse_id, 0), policy.reorder_point, policy.reorder_qty, on_order)
        if quantity > 0:
            restock = restock_change(
                state.product_id,
                state.sku,
                warehouse_id,
                quantity,
                policy.lead_time_days,
                self._config.lead_time_scale,
                now_ms,
                trigger_id,
            )
            self._schedule(key, restock.due_ms, restock.change)
            self.counts["restocks ordered"] += 1

    def _schedule(self, key: str, due_ms: int, change: dict[str, Any]) -> None:
        self.scheduled[key] = [*(self.scheduled.get(key) or []), [due_ms, change]]
        self.counts["scheduled"] += 1

    def _forget_scheduled(self, key: str, change_id: str) -> None:
        pending = self.scheduled.get(key) or []
        kept = [item for item in pending if item[1]["change_id"] != change_id]
        if len(kept) != len(pending):
            self.scheduled[key] = kept
            self.counts["scheduled arrived"] += len(pending) - len(kept)

    async def _send_scheduled(self) -> None:
        """Send returns and restocks that are due; ``stock`` removes each from the schedule when it folds it."""
        if not self._ready.is_set():
            return
        now_ms = int(time.time() * 1000)
        for key, pending in list(self.scheduled.items()):
            for due_ms, change in pending or []:
                if due_ms <= now_ms and change["change_id"] not in self._sent_scheduled:
                    self._send("inventory_changes", key, change)
                    self._sent_scheduled.add(change["change_id"])
        self._sender().serve(0)

    # ----- the mirror

    async def mirror(self) -> None:
        """Write the stock of every product changed since the last call to Postgres, in one transaction."""
        async with self._mirror_lock:
            if not self._unmirrored:
                return
            keys, self._unmirrored = self._unmirrored, set()
            states = [state for key in keys if (state := self.stock.get(key))]
            if len(states) != len(keys):
                missing = len(keys) - len(states)
                log.warning("mirror: %d of %d changed products not found in the table", missing, len(keys))
            try:
                await mirror_stock(self._settings.pg_dsn.get_secret_value(), states)
            except Exception as error:
                self._unmirrored |= keys  # written with the next batch
                log.warning("mirroring %d products failed (%s); will retry", len(keys), type(error).__name__)

    async def _flush_mirror(self) -> None:
        """The mirror's last write, when the stock table stops: the agents fold nothing after this."""
        pending = len(self._unmirrored)
        await self.mirror()
        log.info("inventory mirror flushed at shutdown: %d products, %d left unwritten", pending, len(self._unmirrored))

    # ----- plumbing

    def _state(self, key: str) -> StockState | None:
        stored = self.stock.get(key)
        return StockState.from_dict(stored) if stored else None

    async def _valid(
        self, event: EventT, validate: Callable[[Mapping[str, Any]], str | None], what: str
    ) -> dict[str, Any] | None:
        """The event's value with epoch-ms times, or None after dead-lettering it as undecodable or invalid."""
        value = await self._decoded(event)
        if value is None:
            return None
        valid = _millis(value)
        reason = validate(valid)
        if reason is not None:
            self._dead_letter(event, f"invalid {what}: {reason}")
            return None
        return valid

    async def _decoded(self, event: EventT) -> Mapping[str, Any] | None:
        """The event's value, or None after dead-lettering it; waits out a registry outage instead."""
        while True:
            try:
                return self._decoder.decode(event.message.topic, event.value)
            except UndecodableRecord as error:
                self._dead_letter(event, str(error))
                return None
            except RegistryUnavailable as error:
                log.warning("schema registry unavailable while decoding (%s); waiting", error)
                await asyncio.sleep(REGISTRY_PAUSE)

    def _dead_letter(self, event: EventT, error: str) -> None:
        message = event.message
        original = message.headers or []
        pairs = list(original.items()) if isinstance(original, Mapping) else list(original)
        headers = dead_letter_headers(pairs, message.topic, message.partition, message.offset, error)
        self._sender().send_surely(
            self._topics["dead_letter"], message.key or b"", event.value or b"", int(message.timestamp * 1000), headers
        )
        self.counts["dead letters"] += 1

    def _send(self, role: str, key: str, value: Mapping[str, Any]) -> None:
        encoded = self._codec.encode(role, value)
        self._sender().send_surely(self._topics[role], key.encode(), encoded, int(time.time() * 1000))

    def _sender(self) -> EventProducer:
        assert self._producer is not None, "used before start()"
        return self._producer

    def _reference_data(self) -> StockReference:
        assert self.reference is not None, "used before start()"
        return self.reference

    def _changes_topic_is_empty(self) -> bool:
        consumer = Consumer({"bootstrap.servers": self._settings.kafka_bootstrap, "group.id": "datagen-probe"})
        try:
            topic = self._topics["inventory_changes"]
            metadata = consumer.list_topics(topic, timeout=10).topics[topic]
            return all(
                consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1] == 0
                for partition in metadata.partitions
            )
        finally:
            consumer.close()

    async def _send_opening_balances(self, reference: StockReference) -> int:
        """The seeded stock as RESTOCK changes, so the topic is a complete history (Postgres holds it already)."""
        now_ms = int(time.time() * 1000)
        sent = 0
        if self._pg is not None:
            await self._pg.mark_applied(f"{OPENING}{product}-{warehouse}" for product, warehouse in reference.opening)
        for (product_id, warehouse_id), on_hand in sorted(reference.opening.items()):
            if on_hand <= 0:
                continue
            change = inventory_change(
                f"{OPENING}{product_id}-{warehouse_id}",
                product_id,
                reference.skus[product_id],
                warehouse_id,
                "RESTOCK",
                on_hand,
                None,
                now_ms,
            )
            self._send("inventory_changes", str(product_id), change)
            sent += 1
        return sent
