"""The generation timer: each tick turns the token bucket's allowance into Avro records on Kafka."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import faust
from confluent_kafka.schema_registry import SchemaRegistryClient
from faust.web import Request, Response, View
from mode import BaseSignalT

from agents.requests import CHANGE, headers_of, requests_topic
from app.avro import AvroCodec
from app.generation import (
    BYTE_LEVEL_KINDS,
    Catalog,
    EventGenerator,
    GenerationConfig,
    PriceChange,
    TokenBucket,
    corrupt,
    diurnal_factor,
    local_hour,
)
from app.producer import EventProducer
from app.settings import Settings
from app.stats import EmissionStats
from db.catalog import write_price_changes

log = logging.getLogger(__name__)

#: How often the timer fires; rates above what one tick carries go out as a batch per tick.
TICK_SECONDS = 0.05
#: Records encoded between two yields to the event loop, so web views stay responsive at high rates.
CHUNK = 2_000
#: The most events one tick makes: at 20 ticks a second, 100,000 events/s, beyond what one process emits.
#: Tokens past it stay in the bucket; a larger batch would only hold more memory and longer GC pauses.
MAX_BATCH = 5_000
#: How long one tick may go on emitting full batches while the bucket holds more (the rest waits for the next).
TICK_BUDGET_SECONDS = 0.5
#: Header on every deliberately malformed record, naming its kind, so consumers can count them.
BAD_RECORD_HEADER = "x-datagen-bad-record"
#: How long to wait for librdkafka's queue to drain a little when it is full.
BACKPRESSURE_PAUSE = 0.01
#: How often background price changes are written to Postgres, in one statement.
PRICE_FLUSH_SECONDS = 1.0
#: How long a stopping worker waits for queued records to reach Kafka.
SHUTDOWN_FLUSH_SECONDS = 3.0


#: What the producer takes: topic, key, value, timestamp in ms, headers.
Record = tuple[str, bytes, bytes, int, list[tuple[str, str | bytes | None]] | None]


def routes(settings: Settings) -> dict[str, tuple[str, list[tuple[str, str | bytes | None]] | None]]:
    """Where each kind of event goes: its topic, or for inventory changes the stock requests topic.

    With the agents on, a background change is a request to the stock agent, which decides it against the stock
    (a DAMAGE takes at most what is there) and writes it to inventory-changes.v1, so that topic stays a faithful
    ledger. A worker with AGENTS_ENABLED=false writes them to inventory-changes.v1 as they are drawn.
    """
    found: dict[str, tuple[str, list[tuple[str, str | bytes | None]] | None]] = {
        kind: (topic, None) for kind, topic in settings.topics().items()
    }
    if settings.agents_enabled:
        found["inventory_changes"] = (requests_topic(settings.app_id), headers_of(CHANGE))
    return found


class Generation:
    """Emits at TARGET_EPS x the diurnal factor through a token bucket, waiting whenever Kafka pushes back."""

    def __init__(
        self,
        settings: Settings,
        generator: EventGenerator,
        codec: AvroCodec,
        producer: EventProducer,
        stats: EmissionStats,
        rng: random.Random,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._generator = generator
        self._codec = codec
        self._producer = producer
        self._stats = stats
        self._rng = rng
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._zone = ZoneInfo(settings.timezone)
        self._topics = settings.topics()
        self._routes = routes(settings)
        self._bucket = TokenBucket(self._target(), settings.bucket_capacity, monotonic())
        self.price_changes: list[PriceChange] = []
        self._stopped = False
        stats.state = "running"

    @property
    def finished(self) -> bool:
        """True once MAX_EVENTS events have gone out."""
        limit = self._settings.max_events
        return limit is not None and self._stats.emitted >= limit

    def shortfall(self) -> int:
        """Events the target asked for that could not go out: tokens the full bucket had to discard."""
        return int(self._bucket.discarded)

    async def tick(self) -> int:
        """Emit what the bucket allows now; the number of records handed to the producer."""
        if self._stopped:
            return 0
        if self.finished:
            self._finish()
            return 0
        now = self._monotonic()
        self._bucket.set_rate(self._target(), now)
        deadline, count = now + TICK_BUDGET_SECONDS, 0
        while True:  # a full batch leaves tokens behind: go on, rather than sleep a tick with the bucket full
            limit = MAX_BATCH
            if self._settings.max_events is not None:
                limit = min(limit, self._settings.max_events - self._stats.emitted)
            batch = self._bucket.take(now, limit)
            if batch:
                await self._emit(batch)
            count += batch
            now = self._monotonic()
            if batch < MAX_BATCH or now >= deadline:
                break
        self._producer.serve(0)
        self.price_changes.extend(self._generator.drain_price_changes())
        self._stats.pending = self._producer.queued()
        self._stats.shortfall = self.shortfall()
        return count

    def _target(self) -> float:
        factor = 1.0
        if self._settings.diurnal_enabled:
            factor = diurnal_factor(local_hour(int(self._wall_clock() * 1000), self._zone))
        self._stats.diurnal_factor = factor
        self._stats.target_eps = self._settings.target_eps * factor
        return self._stats.target_eps

    async def _emit(self, count: int) -> None:
        now_ms = int(self._wall_clock() * 1000)
        events = self._generator.next_batch(count, now_ms)
        encode, send, topics, routes = self._codec.encode, self._producer.send, self._topics, self._routes
        for start in range(0, len(events), CHUNK):
            sent: Counter[str] = Counter()
            late = 0
            for kind, key, value, emitted_ms, late_ms, bad_kind in events[start : start + CHUNK]:
                topic, headers = routes[kind]
                record: Record = (topic, key.encode(), encode(kind, value), emitted_ms, headers)
                if bad_kind is not None:
                    record = self._malformed(record, bad_kind)
                if late_ms:
                    late += 1
                if not send(*record):
                    await self._send_when_room(record)
                sent[kind] += 1
            now = self._monotonic()
            for kind, sent_count in sent.items():
                self._stats.add(topics[kind], sent_count, now)
            self._stats.late_events += late
            await asyncio.sleep(0)

    def _malformed(self, record: Record, bad_kind: str) -> Record:
        """``record`` made into a deliberately bad one of ``bad_kind``, with the header that names the kind."""
        topic, key, value, emitted_ms, headers = record
        if bad_kind in BYTE_LEVEL_KINDS:
            value = corrupt(bad_kind, value, self._rng)
        self._stats.bad_records[bad_kind] += 1
        return topic, key, value, emitted_ms, [*(headers or []), (BAD_RECORD_HEADER, bad_kind.encode())]

    async def _send_when_room(self, record: Record) -> None:
        """Wait for librdkafka's queue to make room: the bucket waits with it, nothing is dropped."""
        while not self._producer.send(*record):
            self._stats.backpressure_waits += 1
            if self._stats.backpressure_waits % 100 == 1:
                log.warning(
                    "Kafka is pushing back: producer queue full (%d waits so far, %d events behind target)",
                    self._stats.backpressure_waits,
                    self.shortfall(),
                )
            self._producer.serve(0)
            await asyncio.sleep(BACKPRESSURE_PAUSE)

    def stop(self) -> None:
        """Generate nothing more (the worker is stopping)."""
        self._stats.state = "stopped"
        self._stopped = True

    def flush(self, timeout: float) -> int:
        """Deliver what the producer holds; the records still undelivered after ``timeout`` seconds."""
        return self._producer.flush(timeout)

    def _finish(self) -> None:
        if self._stats.state != "finished":
            self._stats.state = "finished"
            log.info("MAX_EVENTS=%s reached: generation stopped", self._settings.max_events)


class GenerationAgent:
    """The generator's place in the Faust app: its timers, its ``/stats/`` view, its flush at shutdown.

    Nothing is generated until ``start`` is given the catalogue, which the app does once the topics exist,
    the schemas are registered and the reference data is seeded.
    """

    def __init__(self, app: faust.App, settings: Settings, registry: SchemaRegistryClient) -> None:
        self._settings = settings
        self._registry = registry
        self.stats = EmissionStats()
        self.generation: Generation | None = None
        app.timer(TICK_SECONDS, name="generate")(self._tick)
        app.timer(PRICE_FLUSH_SECONDS, name="write-prices")(self._write_prices)
        app.page("/stats/")(self._stats_view())
        app.on_before_shutdown.connect(self._on_shutdown)

    def start(self, catalog: Catalog) -> Generation:
        """Begin generating from ``catalog``."""
        settings = self._settings
        seed = settings.random_seed if settings.random_seed is not None else secrets.randbits(63)
        log.info("generating with RANDOM_SEED=%d at TARGET_EPS=%s", seed, settings.target_eps)
        generator = EventGenerator(catalog, GenerationConfig.from_settings(settings), random.Random(seed))
        codec = AvroCodec(self._registry, settings.topics())
        producer = EventProducer(
            settings.kafka_bootstrap, client_id=f"{settings.app_id}-generator", queue_max=settings.producer_queue_max
        )
        self.generation = Generation(
            settings, generator, codec, producer, self.stats, random.Random(f"{seed}:faults")
        )
        return self.generation

    async def _tick(self) -> None:
        if self.generation is not None:
            await self.generation.tick()

    async def _write_prices(self) -> None:
        generation = self.generation
        if generation is None or not generation.price_changes:
            return
        changes, generation.price_changes = generation.price_changes, []
        try:
            await write_price_changes(self._settings.pg_dsn.get_secret_value(), changes)
        except Exception as error:
            generation.price_changes[:0] = changes  # kept for the next flush, in order
            log.warning("writing %d price changes failed (%s); will retry", len(changes), type(error).__name__)

    async def _on_shutdown(self, sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        if self.generation is not None:
            self.generation.stop()
            await self._write_prices()
            left = await asyncio.to_thread(self.generation.flush, SHUTDOWN_FLUSH_SECONDS)
            log.info("generator stopped: %d events emitted, %d undelivered at exit", self.stats.emitted, left)

    def _stats_view(self) -> type[View]:
        stats = self.stats

        class Stats(View):
            """Per topic the events emitted and the achieved rate; the target, diurnal factor, backpressure."""

            async def get(self, request: Request) -> Response:
                return self.json(stats.report(time.monotonic()))

        return Stats
