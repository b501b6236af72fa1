"""The fulfilment agents, wired: orders (payments) and stock (shipments, inventory changes), over one ledger.

``orders`` reads orders.v1, decides payments and forwards each order, keyed by product, to the stock requests
topic. ``stock`` reads that topic, where the generator's background changes and the due scheduled items arrive
too, and decides everything against the ledger that CANON_INVENTORY picks once, here: Kafka tables or Postgres.
A timer sends the requests of items that fall due; with MIRROR_INVENTORY_TO_DB another writes changed stock to
Postgres (kafka mode).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import faust
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from faust import Stream
from faust.types import StreamT

from agents.derived_truth import DerivedTruth
from agents.intake import Intake, deliver
from agents.kafka_ledger import KafkaLedger
from agents.ledger import StockLedger
from agents.orders import OrdersAgent
from agents.pg_ledger import PostgresLedger
from agents.requests import OPENING, headers_of
from agents.stock import StockAgent
from app.avro import AvroCodec
from app.clients import kafka_config
from app.decoding import RecordDecoder
from app.derivation import DerivationConfig, inventory_change
from app.derivation.agent_clock import AgentClock
from app.inventory.stockroom import StockReference
from app.producer import EventProducer
from app.retry import until_done
from app.settings import Settings
from app.stats import EmissionStats
from app.wire.roles import DEAD_LETTER, INVENTORY_CHANGES, ORDERS, requests_topic
from db.mirror import mirror_stock
from db.truth_marks import TruthMarks
from schemas.symbols import RESTOCK

log = logging.getLogger(__name__)

#: How often due returns, reorders and backorder expiries are requested.
SCHEDULE_SECONDS = 1.0
#: How often the mirror writes changed stock to Postgres (MIRROR_INVENTORY_TO_DB=true).
MIRROR_SECONDS = 1.0
#: The change id prefix of the opening balances (the seeded stock as RESTOCK changes).
OPENING_PREFIX = "opening-"
#: How often a worker waiting for the opening balances looks for them.
OPENING_POLL_SECONDS = 0.5
#: How long a stopping worker waits for the agents' records to reach Kafka (unacknowledged input is decided again).
SHUTDOWN_FLUSH_SECONDS = 2.0
#: How often the agents' truth publishes the minutes that are over, and writes where it ends.
TRUTH_SECONDS = 1.0
#: How often a worker looks for killed worker processes whose truth is unpublished.
RECOVER_SECONDS = 5.0
#: A worker process silent this long (and at least twice the broker session timeout) is taken to be dead.
SILENT_SECONDS = 30.0


def ledger_for(
    app: faust.App,
    settings: Settings,
    config: DerivationConfig,
    before_close: Callable[[], Awaitable[None]] | None = None,
    clock: Callable[[], int] | None = None,
) -> StockLedger:
    """The ledger CANON_INVENTORY names: the one place the mode is decided.

    ``before_close`` (kafka mode) runs when the stock table stops, after the agents' last decision; ``clock``: the
    agents' time in epoch ms (the wall clock by default).
    """
    timeout_ms = config.scaled_ms(settings.backorder_timeout_days)
    if settings.canon_inventory == "postgres":
        return PostgresLedger(settings.pg_dsn.get_secret_value(), config, timeout_ms, clock)
    topic = requests_topic(settings.app_id)
    return KafkaLedger(app, topic, settings.topic_partitions, config, timeout_ms, before_close, clock)


def agent_clock(settings: Settings) -> AgentClock:
    """The agents' clock, starting where the generator's simulated clock starts (START_TIME - BACKFILL, or now)."""
    start = settings.start_ms
    if settings.backfill_ms:
        start = (round(time.time() * 1000) if start is None else start) - settings.backfill_ms
    return AgentClock(start, settings.speedup)


class FulfilmentAgents:
    """The two agents, the ledger they decide against, and the timers."""

    def __init__(
        self, app: faust.App, settings: Settings, registry: SchemaRegistryClient, stats: EmissionStats
    ) -> None:
        """``stats`` receives what the agents do and the ledger's figures (shown by ``/stats/``)."""
        self._settings = settings
        self._registry = registry
        self._topics = settings.topics()
        self._config = DerivationConfig.from_settings(settings, lead_time_scale=settings.lead_time_scale)
        self.stats = stats
        self.counts = stats.agents
        mirroring = settings.mirror_inventory_to_db and settings.canon_inventory == "kafka"
        self.clock = agent_clock(settings)
        self.ledger = ledger_for(
            app, settings, self._config, self._flush_mirror if mirroring else None, self.clock.now_ms
        )
        self.reference: StockReference | None = None
        self._producer: EventProducer | None = None
        self._orders: OrdersAgent | None = None
        self._stock: StockAgent | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self.truth: DerivedTruth | None = None
        self._marks = TruthMarks(settings.pg_dsn.get_secret_value(), settings.app_id)
        self._silent = max(SILENT_SECONDS, 2 * float(app.conf.broker_session_timeout))
        self._truth_tasks: dict[str, asyncio.Task[None]] = {}
        self._recovered: list[tuple[list[str], list[str]]] = []
        self._recovered_at = 0.0
        self.requests_name = requests_topic(settings.app_id)
        # internal=True: Faust creates it before it subscribes (the broker does not auto-create topics).
        source: dict[str, Any] = {
            "partitions": settings.topic_partitions,
            "replicas": settings.topic_replication_factor,
            "key_serializer": "raw",
            "value_serializer": "raw",
        }
        self.requests = app.topic(self.requests_name, internal=True, **source)
        orders = app.topic(self._topics[ORDERS], **source)
        app.agent(orders, name="orders")(self._run_orders)
        app.agent(self.requests, name="stock")(self._run_stock)
        app.timer(SCHEDULE_SECONDS, name="send-due")(self._send_due)
        if mirroring:
            app.timer(MIRROR_SECONDS, name="mirror")(self.mirror)
        if settings.truth_enabled:
            app.timer(TRUTH_SECONDS, name="derived-truth")(self._tell_truth)
        app.on_before_shutdown.connect(self._on_shutdown)

    async def start(
        self, reference: StockReference, *, open_ledger: bool = True, schema_ids: Mapping[str, int] | None = None
    ) -> None:
        """Begin work with the reference data, writing with ``schema_ids`` (role: id, as registered at start-up); on
        the first run, open the ledger with the seeded balances.

        ``open_ledger=False``: the generation shard 0's worker opens it (``open_ledger``), once per deployment.
        """
        settings = self._settings
        self.reference = reference
        codec = AvroCodec(self._registry, self._topics, ids=schema_ids)
        decoder = RecordDecoder(self._registry)
        topics = self._topics
        truth = None
        if settings.truth_enabled:
            truth = self.truth = DerivedTruth(
                settings.app_id,
                codec,
                topics,
                lambda role, raw: decoder.decode(topics[role], raw),
                kafka_config(settings),
                clock=self.clock.now_ms,
            )
            # Before anything is sent: a process killed at once is known, and its records counted by another.
            marks, incarnation, since = self._marks, truth.incarnation, truth.truth_from()
            await until_done(lambda: asyncio.to_thread(marks.beat, incarnation, since), "writing the truth mark")
        producer = self._producer = EventProducer(
            kafka_config(settings),
            client_id=f"{settings.app_id}-agents",
            queue_max=settings.producer_queue_max,
            failures=None if truth is None else truth.report,
        )
        producer.clock = self.clock.now_ms
        if truth is not None:
            truth.attach(producer)
        intake = Intake(decoder, producer, self._topics[DEAD_LETTER], self.counts)
        self._orders = OrdersAgent(
            intake,
            codec,
            producer,
            self._topics,
            self.requests_name,
            self._config,
            self.counts,
            self.stopping,
            products=frozenset(reference.skus),
            truth=truth,
            clock=self.clock,
        )
        self._stock = StockAgent(
            self.ledger,
            intake,
            codec,
            producer,
            self._topics,
            self.requests_name,
            self.counts,
            self.stopping,
            truth=truth,
            clock=self.clock,
        )
        self._stock.start(reference)
        await self.ledger.start(reference)
        if open_ledger:
            await self._open_if_new()
        self._ready.set()

    async def open_ledger(self, first: bool) -> None:
        """Before generation shards start: the worker of shard 0 (``first``) opens the ledger on the first run; the
        others wait until it has, so no order of the first run finds an empty stock."""
        if first:
            await self._open_if_new()
            return
        assert self.reference is not None
        if not any(on_hand > 0 for on_hand in self.reference.opening.values()):
            return  # nothing to open with
        waited = False
        while await self._new():
            if not waited:
                log.info("waiting for the worker of generation shard 0 to open the inventory")
                waited = True
            await asyncio.sleep(OPENING_POLL_SECONDS)

    async def _new(self) -> bool:
        """``_is_new``, asked again with backoff while Kafka does not answer (a broker restarting as a worker starts
        ended the worker here: found by the fault suite)."""
        return await until_done(lambda: asyncio.to_thread(self._is_new), "checking whether the inventory is opened")

    async def _open_if_new(self) -> None:
        assert self.reference is not None
        assert self._producer is not None
        if await self._new():
            opened = self._send_opening_balances(self.reference, self._producer)
            await deliver(self._producer, "opening balances", self.stopping)
            log.info("inventory opened from the seeded stock: %d opening RESTOCK requests", opened)

    async def _run_orders(self, stream: StreamT) -> None:
        await self._ready.wait()
        assert self._orders is not None
        await self._orders.run(cast(Stream, stream))

    async def _run_stock(self, stream: StreamT) -> None:
        await self._ready.wait()
        assert self._stock is not None
        await self._stock.run(cast(Stream, stream))

    async def _send_due(self) -> None:
        if self._stock is not None and self._ready.is_set():
            await self._stock.send_due()
            self.stats.ledger = self.ledger.figures()

    # ----- the truth of what the agents derive

    async def _tell_truth(self) -> None:
        """Publish the minutes that are over and delivered; write where this process's truth ends; now and then
        publish what killed processes left (agents/derived_truth.py)."""
        truth, producer = self.truth, self._producer
        if truth is None or producer is None or not self._ready.is_set() or self._stopping:
            return
        truth.settle(producer.drained_ms)
        now_ms = self.clock.now_ms()
        # Idle agents: no batch waits for its deliveries, so wait here.
        if truth.unsettled(now_ms) and await asyncio.to_thread(producer.flush, TRUTH_SECONDS) == 0:
            truth.settle(now_ms)
        if truth.uncertain:
            try:
                await truth.resolve()
            except Exception as error:  # Kafka slow or away: those minutes wait, the next tick tries again
                log.warning("counting timed-out records again from Kafka failed (%s); will retry", error)
        truth.publish(self.clock.now_ms())
        self._in_background("mark", self._mark_truth)
        if time.monotonic() - self._recovered_at >= RECOVER_SECONDS:
            self._recovered_at = time.monotonic()
            self._in_background("recover", self._recover_truth)

    def _in_background(self, name: str, step: Callable[[], Awaitable[None]]) -> None:
        running = self._truth_tasks.get(name)
        if running is None or running.done():
            self._truth_tasks[name] = asyncio.ensure_future(step())

    async def _mark_truth(self) -> None:
        truth = self.truth
        assert truth is not None
        try:
            await asyncio.to_thread(self._marks.beat, truth.incarnation, truth.truth_from())
            ended = [claimed for claimed, keys in self._recovered if truth.delivered(keys)]
            if ended:
                await asyncio.to_thread(self._marks.end, sorted({name for names in ended for name in names}))
                self._recovered = [entry for entry in self._recovered if entry[0] not in ended]
        except Exception as error:  # Postgres slow or away: the next tick writes it
            log.warning("writing the truth mark failed (%s); will retry", type(error).__name__)

    async def _recover_truth(self) -> None:
        truth = self.truth
        assert truth is not None
        try:
            claimed, keys = await truth.recover(self._marks, self._silent)
        except Exception as error:  # claimed ones are claimed again once silent again
            log.warning("counting a killed worker's truth from Kafka failed (%s); will retry", type(error).__name__)
            return
        if claimed:
            self._recovered.append((claimed, keys))

    async def _end_truth(self) -> None:
        """At a graceful stop, once nothing more is sent and the records are delivered: publish every minute, and
        once delivered, mark this process's truth complete. Otherwise another worker counts it from Kafka."""
        truth, producer = self.truth, self._producer
        if truth is None or producer is None:
            return
        settled_ms = self.clock.now_ms()
        if await asyncio.to_thread(producer.flush, SHUTDOWN_FLUSH_SECONDS) != 0:
            log.warning("agents' truth: records undelivered at exit; another worker counts them from Kafka")
            return
        truth.settle(settled_ms)
        truth.publish(settled_ms, everything=True)
        settled_ms = self.clock.now_ms()
        if await asyncio.to_thread(producer.flush, SHUTDOWN_FLUSH_SECONDS) != 0:
            return
        truth.settle(settled_ms)
        if truth.minutes or truth.pending():
            return
        try:
            await asyncio.to_thread(self._marks.end, [truth.incarnation])
            log.info("agents' truth published whole (worker process %s)", truth.incarnation)
        except Exception as error:
            log.warning("marking the truth complete failed (%s); another worker counts it", type(error).__name__)

    # ----- the mirror (kafka mode)

    async def mirror(self) -> None:
        """Write the stock of every product changed since the last call to Postgres, in one transaction."""
        states = self.ledger.changed()
        if not states:
            return
        try:
            await mirror_stock(self._settings.pg_dsn.get_secret_value(), [state.to_dict() for state in states])
        except Exception as error:
            log.warning("mirroring %d products failed (%s); will retry", len(states), type(error).__name__)
            self.ledger.changed_again([state.product_id for state in states])

    def stopping(self) -> bool:
        """True once the worker has begun to stop."""
        return self._stopping

    async def _on_shutdown(self, sender: Any, /, *args: Any, **kwargs: Any) -> None:
        self._stopping = True  # the agents send nothing from now on
        if self.truth is not None:
            await self._end_truth()
        if self._producer is not None:
            left = await asyncio.to_thread(self._producer.flush, SHUTDOWN_FLUSH_SECONDS)
            log.info("agents stopped: %d records undelivered at exit", left)
        await self.ledger.stop()

    async def _flush_mirror(self) -> None:
        """The mirror's last write, when the stock table stops: the agents decide nothing after this."""
        await self.mirror()
        log.info("inventory mirror flushed at shutdown")

    # ----- the opening balances

    def _is_new(self) -> bool:
        """True when neither the requests topic nor inventory-changes.v1 holds anything: a first run."""
        consumer = Consumer(kafka_config(self._settings, **{"group.id": "datagen-probe"}))
        try:
            for topic in (self.requests_name, self._topics[INVENTORY_CHANGES]):
                metadata = consumer.list_topics(topic, timeout=10).topics[topic]
                for partition in metadata.partitions:
                    if consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1] > 0:
                        return False
            return True
        finally:
            consumer.close()

    def _send_opening_balances(self, reference: StockReference, producer: EventProducer) -> int:
        """The seeded stock as RESTOCK requests: the ledger applies each once and writes it to the topic."""
        now_ms = self.clock.now_ms()
        headers = headers_of(OPENING)
        sent = 0
        for (product_id, warehouse_id), on_hand in sorted(reference.opening.items()):
            if on_hand <= 0:
                continue
            change = inventory_change(
                f"{OPENING_PREFIX}{product_id}-{warehouse_id}",
                product_id,
                reference.skus[product_id],
                warehouse_id,
                RESTOCK,
                on_hand,
                None,
                now_ms,
            )
            value = json.dumps(change).encode()
            producer.send_surely(self.requests_name, str(product_id).encode(), value, now_ms, headers)
            sent += 1
        return sent
