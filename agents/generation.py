"""The generation timer: each tick turns the token bucket's allowance into Avro records on Kafka."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import faust
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from faust.web import Request, Response, View
from mode import BaseSignalT

from agents.requests import CHANGE, headers_of
from agents.shard_keeper import SHARDS_TABLE, ShardKeeper
from agents.truth import TruthTeller
from app.avro import AvroCodec
from app.clients import kafka_config
from app.decoding import RecordDecoder
from app.generation import (
    BYTE_LEVEL_KINDS,
    Catalog,
    Event,
    GenerationConfig,
    PriceChange,
    ShardStream,
    TokenBucket,
    block_size,
    corrupt,
    deal,
    diurnal_factor,
    local_hour,
)
from app.generation.clock import SimulatedClock
from app.generation.evolution import evolved, first_evolved
from app.producer import EventProducer
from app.registry import evolve
from app.retry import until_done
from app.settings import Settings, mask_url
from app.stats import EmissionStats
from app.truth import MinuteCounts, minute_of
from app.wire.headers import BAD_RECORD_HEADER, DUPLICATE, Headers
from app.wire.roles import GENERATED, INVENTORY_CHANGES, requests_topic
from db.catalog_store import write_price_changes
from schemas import EVOLVED_SCHEMAS

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
#: How long to wait for librdkafka's queue to drain a little when it is full.
BACKPRESSURE_PAUSE = 0.01
#: How often background price changes are written to Postgres, in one statement.
PRICE_FLUSH_SECONDS = 1.0
#: How long a stopping worker waits for queued records to reach Kafka.
SHUTDOWN_FLUSH_SECONDS = 3.0
#: How long a worker losing shards in a rebalance waits for their records to reach Kafka (their next owner counts
#: what Kafka holds of their open minutes).
REVOKE_FLUSH_SECONDS = 5.0
#: How often a generator waiting at a minute's end for Kafka to take that minute's records says so.
SETTLE_WARNING_SECONDS = 10.0
#: How often where each shard's published truth ends is written to the shards table.
TRUTH_MARK_SECONDS = 1.0


#: What the producer takes: topic, key, value, timestamp in ms, headers.
Record = tuple[str, bytes, bytes, int, Headers | None]


def routes(settings: Settings) -> dict[str, tuple[str, Headers | None]]:
    """Where each kind of event goes: its topic, or for inventory changes the stock requests topic.

    With the agents on, a background change is a request to the stock agent, which decides it against the stock
    (a DAMAGE takes at most what is there) and writes it to inventory-changes.v1, so that topic stays a faithful
    ledger. A worker with AGENTS_ENABLED=false writes them to inventory-changes.v1 as they are drawn.
    """
    found: dict[str, tuple[str, Headers | None]] = {
        kind: (topic, None) for kind, topic in settings.topics().items()
    }
    if settings.agents_enabled:
        found[INVENTORY_CHANGES] = (requests_topic(settings.app_id), headers_of(CHANGE))
    return found


class Evolution:
    """Version 2 of the evolving schemas (SCHEMA_EVOLVE_AFTER): registered when a shard first reaches the switch,
    then written for every event from there on (``app.generation.evolution``)."""

    def __init__(self, settings: Settings, registry: SchemaRegistryClient, codec: AvroCodec) -> None:
        """``codec`` writes version 1 (the roles without a version 2 go on with it)."""
        assert settings.schema_evolve_after is not None
        self._settings = settings
        self._registry = registry
        self._after = settings.schema_evolve_after
        self._shards = settings.generation_shards
        self._v1 = codec
        #: Version 2's codec, made once it is registered, with the ids the registration answered.
        self._v2: AvroCodec | None = None
        #: None until registration was tried; then whether version 2 is registered (False: the registry refused it).
        self.registered: bool | None = None

    def first(self, shard: int) -> int:
        """The first event number of ``shard`` written with version 2."""
        return first_evolved(self._after, shard, self._shards)

    async def ready(self) -> bool:
        """Register version 2 once (waiting, with backoff, while the registry is away); whether it is registered."""
        if self.registered is None:
            settings, registry = self._settings, self._registry

            def attempt() -> dict[str, int] | None:
                try:
                    return evolve(registry, settings)
                except SchemaRegistryError as error:
                    if error.http_status_code == 409:
                        first_line = (str(error).splitlines() or [""])[0][:200]
                        log.error("the registry refused version 2 of the schemas as not BACKWARD compatible (%s);"
                                  " going on with version 1", first_line)
                        return None
                    raise

            what = f"registering version 2 of the schemas at {mask_url(settings.schema_registry_url)}"
            ids = await until_done(lambda: asyncio.to_thread(attempt), what)
            self.registered = ids is not None
            if ids is not None:
                # Written with the ids just registered: no record asks the registry again, which may go away.
                self._v2 = AvroCodec(registry, settings.topics(), version=2, ids=ids)
                log.info("SCHEMA_EVOLVE_AFTER=%d reached: version 2 registered (BACKWARD checked): %s", self._after,
                         ids)
        return self.registered

    def encode(self, kind: str, value: Mapping[str, Any]) -> bytes:
        """``value`` written with version 2 of its schema (with its new fields), or version 1 if it has none."""
        if kind in EVOLVED_SCHEMAS:
            assert self._v2 is not None, "version 2 is written only once ready() says it is registered"
            return self._v2.encode(kind, evolved(kind, value))
        return self._v1.encode(kind, value)


class Generation:
    """Emits this worker's shards at their share of TARGET_EPS x the diurnal factor through a token bucket.

    The worker holds ``streams`` (set by ``hold``), some of GENERATION_SHARDS shards: the bucket refills at
    TARGET_EPS x the factor x held / GENERATION_SHARDS, so workers that hold all the shards between them emit
    TARGET_EPS together, and each tick deals its events out to the streams so they keep level.
    """

    def __init__(
        self,
        settings: Settings,
        codec: AvroCodec,
        producer: EventProducer,
        stats: EmissionStats,
        *,
        teller: TruthTeller | None = None,
        evolution: Evolution | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        clock: SimulatedClock | None = None,
    ) -> None:
        """``teller``: counts what each shard emits per minute and publishes it on the truth topic;
        ``evolution``: version 2 of the evolving schemas from SCHEMA_EVOLVE_AFTER on; ``clock``: simulated time
        (default: START_TIME, SPEEDUP and BACKFILL read on ``wall_clock``); ``monotonic`` times ticks and rates."""
        self._settings = settings
        self._codec = codec
        self._producer = producer
        self._stats = stats
        self._monotonic = monotonic
        self.clock = clock or SimulatedClock(settings.start_ms, settings.speedup, settings.backfill_ms, wall_clock)
        self._zone = ZoneInfo(settings.timezone)
        self._topics = settings.topics()
        self._routes = routes(settings)
        self._shard_routes: dict[int, dict[str, tuple[str, Headers | None]]] = {}
        self._teller = teller
        self._evolution = evolution
        self._waiting_since: float | None = None
        if teller is not None:
            teller.book.closed_through = minute_of(self.clock.now_ms())
        self._shards = settings.generation_shards
        # A backfill moves the clock by at most a batch at a time, so no token is ever over the capacity then.
        capacity = settings.bucket_capacity
        if self.clock.backfilling:
            capacity = max(capacity, MAX_BATCH + 1.0)
        self._bucket = TokenBucket(0.0, capacity, self.clock.now_ms() / 1000)
        self.streams: dict[int, ShardStream] = {}
        self.price_changes: list[PriceChange] = []
        self._stopped = False
        #: Set when sending must stop at once (a stop, a rebalance); cleared by the next tick that is not paused.
        self._halted = False
        self._finished = False
        stats.state = "waiting for shards"

    def hold(self, streams: dict[int, ShardStream]) -> None:
        """Emit ``streams`` from now on (the shards this worker holds)."""
        self.streams = streams
        self._stats.shards = sorted(streams)
        if self._stats.state == "waiting for shards" and streams:
            self._stats.state = "running"
        elif not streams:
            self._stats.state = "waiting for shards"

    @property
    def finished(self) -> bool:
        """True once every shard held has made its share of MAX_EVENTS."""
        return bool(self.streams) and all(stream.finished for stream in self.streams.values())

    def shortfall(self) -> int:
        """Events the target asked for that could not go out: tokens the full bucket had to discard."""
        return int(self._bucket.discarded)

    async def tick(self, paused: bool = False) -> int:
        """Emit what the bucket allows now; the number of records handed to the producer.

        ``paused`` (a rebalance is under way): nothing is emitted, and the bucket refills at rate 0.
        """
        if self._stopped:
            return 0
        if not paused:
            self._halted = False
        if not self._settle_truth():
            return 0  # a minute ended: what was queued before its end is being delivered
        if self.finished:
            self._finish()
            self._publish_truth(paused)
            return 0
        clock, bucket = self.clock, self._bucket
        now = clock.now_ms() / 1000  # the bucket counts simulated seconds
        streams = [] if paused else [stream for stream in self.streams.values() if not stream.finished]
        bucket.set_rate(self._target(len(streams)), now)
        deadline, count = self._monotonic() + TICK_BUDGET_SECONDS, 0
        while streams:  # a full batch leaves tokens behind: go on, rather than sleep a tick with the bucket full
            room = sum(stream.room for stream in streams)
            batch = bucket.take(now, min(MAX_BATCH, room))
            for stream, share in deal(batch, streams):
                await self._emit(stream, share)
            count += batch
            if self._stopped or self._halted or self._monotonic() >= deadline:
                break
            if clock.backfilling:  # history: move the clock on by what one batch (or one second) holds
                if batch < room and bucket.rate > 0:
                    now = clock.advance(1000 * min(1.0, (MAX_BATCH - 1) / bucket.rate)) / 1000
                    bucket.set_rate(self._target(len(streams)), now)
                    streams = [stream for stream in streams if not stream.finished]
                    if not clock.backfilling:  # caught up: live from here, with the live bucket's size
                        bucket = self._bucket = TokenBucket(bucket.rate, self._settings.bucket_capacity, now)
                    continue
                break
            now = clock.now_ms() / 1000
            if batch < MAX_BATCH:
                break
        self._producer.serve(0)
        self._publish_truth(paused)
        for stream in self.streams.values():
            self.price_changes.extend(stream.generator.drain_price_changes())
        self._stats.pending = self._producer.queued()
        self._stats.shortfall = self.shortfall()
        self._stats.simulated_ms, self._stats.backfilling = clock.now_ms(), clock.backfilling
        return count

    def _settle_truth(self) -> bool:
        """False while a minute that ended still has records in the producer's queue: nothing new is emitted until
        they are delivered, so the minute's counts are final. Each tick that finds the queue empty settles."""
        teller = self._teller
        if teller is None:
            return True
        now_ms = self.clock.now_ms()
        self._producer.serve(0)
        if not self._producer.queued():
            teller.settle(now_ms)
            self._waiting_since = None
            return True
        if not teller.book.unsettled(now_ms):
            return True
        now = self._monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        elif now - self._waiting_since >= SETTLE_WARNING_SECONDS:
            self._waiting_since = now
            log.warning(
                "generation waits for Kafka: %d records queued before the end of a minute are not yet delivered",
                self._producer.queued(),
            )
        return False

    def _publish_truth(self, paused: bool) -> None:
        """Publish the truth of every minute that is over and settled (not while a rebalance is under way)."""
        if self._teller is not None and not paused:
            self._teller.publish(self.clock.now_ms(), self.streams.__contains__)

    def publish_open_truth(self) -> int:
        """At a graceful stop, after the flush: the truth of the minutes still open, marked incomplete."""
        if self._teller is None:
            return 0
        now_ms = self.clock.now_ms()
        self._teller.settle(now_ms)
        return self._teller.publish(now_ms, self.streams.__contains__) + self._teller.publish_open(now_ms)

    def _routes_of(self, shard: int) -> dict[str, tuple[str, Headers | None]]:
        """Where each kind of ``shard``'s events goes, with the header naming the shard when the truth is told."""
        found = self._shard_routes.get(shard)
        if found is None:
            if self._teller is None:
                found = self._routes
            else:
                own = self._teller.headers(shard)
                found = {kind: (topic, [*(headers or []), *own]) for kind, (topic, headers) in self._routes.items()}
            self._shard_routes[shard] = found
        return found

    def _target(self, streams: int) -> float:
        factor = 1.0
        if self._settings.diurnal_enabled:
            factor = diurnal_factor(local_hour(self.clock.now_ms(), self._zone))
        self._stats.diurnal_factor = factor
        self._stats.group_target_eps = self._settings.target_eps * factor
        self._stats.target_eps = self._stats.group_target_eps * streams / self._shards
        return self._stats.target_eps

    def interrupt(self) -> None:
        """Send nothing more until the next tick that is not paused (the shards may be about to move)."""
        self._halted = True

    async def _emit(self, stream: ShardStream, count: int) -> None:
        now_ms = self.clock.now_ms()
        teller = self._teller
        if teller is not None:  # never into a minute whose truth is published (a clock set back)
            now_ms = max(now_ms, teller.book.closed_through)
        first = stream.position
        events = stream.next_batch(count, now_ms)
        segments: list[tuple[list[Event], Callable[[str, Mapping[str, Any]], bytes]]] = [(events, self._codec.encode)]
        evolution = self._evolution
        if evolution is not None:
            evolved_from = max(0, evolution.first(stream.shard) - first)
            if evolved_from < len(events) and await evolution.ready():
                segments = [(events[:evolved_from], self._codec.encode), (events[evolved_from:], evolution.encode)]
        for part, encode in segments:
            await self._send_events(stream, part, encode, now_ms)

    async def _send_events(
        self,
        stream: ShardStream,
        events: list[Event],
        encode: Callable[[str, Mapping[str, Any]], bytes],
        now_ms: int,
    ) -> None:
        """Send ``events`` of ``stream``, written by ``encode``, in chunks, counting them."""
        teller = self._teller
        send, topics = self._producer.send, self._topics
        routes = self._routes_of(stream.shard)
        minute = minute_of(now_ms)
        counts = None if teller is None else teller.book.counts(stream.shard, minute)
        for start in range(0, len(events), CHUNK):
            sent: Counter[str] = Counter()
            late = 0
            chunk = events[start : start + CHUNK]
            for kind, key, value, emitted_ms, late_ms, bad_kind, duplicate in chunk:
                if self._halted:  # stopping, or the shards may move: the rest is a gap of unused event numbers
                    break
                topic, headers = routes[kind]
                record: Record = (topic, key.encode(), encode(kind, value), emitted_ms, headers)
                if bad_kind is not None:
                    record = self._malformed(record, bad_kind, stream.faults)
                if late_ms:
                    late += 1
                if not send(*record) and not await self._send_when_room(record):
                    return
                if counts is not None:
                    counts.add(topic, kind, value, late_ms > 0, bad_kind)
                sent[kind] += 1
                if duplicate and await self._duplicate(record):
                    if counts is not None:
                        counts.add_duplicate(topic)
                    self._stats.duplicates[topics[kind]] += 1
            now = self._monotonic()
            for kind, sent_count in sent.items():
                self._stats.add(topics[kind], sent_count, now)
            self._stats.late_events += late
            await asyncio.sleep(0)

    def _malformed(self, record: Record, bad_kind: str, rng: random.Random) -> Record:
        """``record`` made into a deliberately bad one of ``bad_kind``, with the header that names the kind."""
        topic, key, value, emitted_ms, headers = record
        if bad_kind in BYTE_LEVEL_KINDS:
            value = corrupt(bad_kind, value, rng)
        self._stats.bad_records[bad_kind] += 1
        return topic, key, value, emitted_ms, [*(headers or []), (BAD_RECORD_HEADER, bad_kind.encode())]

    async def _duplicate(self, record: Record) -> bool:
        """Send ``record`` a second time, the same key and value bytes, with the duplicate header; False if
        generation stopped or was interrupted first."""
        topic, key, value, emitted_ms, headers = record
        copy: Record = (topic, key, value, emitted_ms, [*(headers or []), DUPLICATE])
        return self._producer.send(*copy) or await self._send_when_room(copy)

    async def _send_when_room(self, record: Record) -> bool:
        """Wait for librdkafka's queue to make room: the bucket waits with it, nothing is dropped; False (nothing
        sent) if generation stops or is interrupted meanwhile."""
        while not self._producer.send(*record):
            if self._halted:
                return False
            self._stats.backpressure_waits += 1
            if self._stats.backpressure_waits % 100 == 1:
                log.warning(
                    "Kafka is pushing back: producer queue full (%d waits so far, %d events behind target)",
                    self._stats.backpressure_waits,
                    self.shortfall(),
                )
            self._producer.serve(0)
            await asyncio.sleep(BACKPRESSURE_PAUSE)
        return True

    def stop(self) -> None:
        """Generate nothing more (the worker is stopping)."""
        self._stats.state = "stopped"
        self._stopped = True
        self._halted = True

    def flush(self, timeout: float) -> int:
        """Deliver what the producer holds; the records still undelivered after ``timeout`` seconds."""
        return self._producer.flush(timeout)

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            self._stats.state = "finished"
            log.info(
                "MAX_EVENTS=%s reached: generation stopped (shards %s made their share)",
                self._settings.max_events,
                sorted(self.streams),
            )


class GenerationAgent:
    """The generator's place in the Faust app: its shards, timers, ``/stats/`` view and flush at shutdown.

    Nothing is generated until ``start`` is given the catalogue, which the app does once the topics exist,
    the schemas are registered and the reference data is seeded; then each shard Faust assigns to this worker
    starts once the assignment has settled, from the end of its last reservation.
    """

    def __init__(self, app: faust.App, settings: Settings, registry: SchemaRegistryClient) -> None:
        self._app = app
        self._settings = settings
        self._registry = registry
        self.stats = EmissionStats()
        # Only generating workers hold shards: Faust deals a table's partitions among the workers that declare it.
        self.keeper = (
            ShardKeeper(app, settings.generation_shards, settings.generation_settle_seconds)
            if settings.generation_enabled
            else None
        )
        self.generation: Generation | None = None
        self._catalog: Catalog | None = None
        self._seed: int | str = 0
        self._price_seed: int | str = 0
        self._block = block_size(settings.target_eps, settings.generation_shards)
        self._reserving: asyncio.Task[None] | None = None
        self._marking: asyncio.Task[None] | None = None
        self._marked_at = 0.0
        self.teller: TruthTeller | None = None
        self._opened: Callable[[bool], Awaitable[None]] | None = None
        app.timer(TICK_SECONDS, name="generate")(self._tick)
        app.timer(PRICE_FLUSH_SECONDS, name="write-prices")(self._write_prices)
        app.page("/stats/")(self._stats_view())
        app.on_before_shutdown.connect(self._on_shutdown)
        app.on_partitions_revoked.connect(self._on_revoked)

    def counted(self) -> MinuteCounts | None:
        """What the truth counted of this worker's emission so far (for ``/metrics``); None with the truth off or
        before generation starts."""
        return None if self.teller is None else self.teller.book.so_far()

    def start(
        self,
        catalog: Catalog,
        opened: Callable[[bool], Awaitable[None]] | None = None,
        schema_ids: Mapping[str, int] | None = None,
    ) -> Generation:
        """Begin generating from ``catalog``, writing with ``schema_ids`` (role: id, as registered at start-up).

        ``opened(first)`` is awaited before shards start: with ``first`` (this worker holds shard 0, which owns
        the once-per-deployment work) it opens the ledger; otherwise it waits until the ledger is open.
        """
        settings = self._settings
        self._seed = settings.random_seed if settings.random_seed is not None else secrets.randbits(63)
        # Every worker must walk prices alike: without RANDOM_SEED the walk follows the APP_ID.
        self._price_seed = settings.random_seed if settings.random_seed is not None else f"app:{settings.app_id}"
        log.info(
            "generating with RANDOM_SEED=%s at TARGET_EPS=%s over GENERATION_SHARDS=%d",
            self._seed,
            settings.target_eps,
            settings.generation_shards,
        )
        self._catalog = catalog
        self._opened = opened
        topics = settings.topics()
        codec = AvroCodec(self._registry, topics, ids=schema_ids)
        if settings.truth_enabled:
            decoder = RecordDecoder(self._registry)
            generated = {topic: kind for kind, (topic, _) in routes(settings).items() if kind in GENERATED}
            self.teller = TruthTeller(
                settings.app_id,
                codec,
                topics,
                lambda role, raw: decoder.decode(topics[role], raw),
                kafka_config(settings),
                generated,
            )
        producer = EventProducer(
            kafka_config(settings),
            client_id=f"{settings.app_id}-generator",
            queue_max=settings.producer_queue_max,
            failures=None if self.teller is None else self.teller.report,
        )
        if self.teller is not None:
            self.teller.attach(producer)
        evolution = None if settings.schema_evolve_after is None else Evolution(settings, self._registry, codec)
        self.generation = Generation(settings, codec, producer, self.stats, teller=self.teller, evolution=evolution)
        return self.generation

    async def _tick(self) -> None:
        generation, keeper = self.generation, self.keeper
        if generation is None or keeper is None:
            return
        if keeper.paused and keeper.settled():
            await self._take_shards(generation)
        self._reserve_ahead(generation)
        if self.teller is not None and self.teller.uncertain:
            try:
                await self.teller.resolve()
            except Exception as error:  # Kafka slow or away: those minutes wait, the next tick tries again
                log.warning("counting timed-out records again from Kafka failed (%s); will retry", error)
        await generation.tick(paused=keeper.paused)
        self._mark_truth(generation, keeper)

    def _mark_truth(self, generation: Generation, keeper: ShardKeeper) -> None:
        """Once a second, write where each held shard's published truth ends, in the background."""
        teller, now = self.teller, time.monotonic()
        if teller is None or keeper.paused or now - self._marked_at < TRUTH_MARK_SECONDS:
            return
        if self._marking is not None and not self._marking.done():
            return
        self._marked_at = now
        marks = {shard: teller.truth_from(shard) for shard in generation.streams}
        self._marking = asyncio.ensure_future(keeper.mark_truth(marks, keeper.epoch))

    async def _take_shards(self, generation: Generation) -> None:
        """After a rebalance: go on with the shards still held, drop the others, start the new ones, each from the
        end of its last reservation."""
        keeper, catalog = self.keeper, self._catalog
        assert keeper is not None
        assert catalog is not None
        epoch = keeper.epoch
        keeper.check_partitions()
        owned = keeper.owned()
        kept = {shard: stream for shard, stream in generation.streams.items() if shard in owned}
        new = [shard for shard in owned if shard not in kept]
        teller = self.teller
        if teller is not None:  # their next owners count what they left unpublished
            teller.book.drop(shard for shard in generation.streams if shard not in owned)
        # Lost shards go before anything is awaited: one that comes back while this waits is new then, started from
        # the table (its reservation, its truth), not from a stream that another worker may have moved on since.
        generation.hold(dict(sorted(kept.items())))
        if new and self._opened is not None:
            await self._opened(0 in owned)
        starts = keeper.positions(new)
        if teller is not None:
            since = {shard: moment for shard in new if (moment := keeper.truth_from(shard)) is not None}
            try:  # what the previous owners emitted and did not publish, counted from Kafka
                await teller.catch_up(since)
                # Never into a minute a previous owner published (its clock may be ahead of this one).
                teller.book.closed_through = max([teller.book.closed_through, *since.values()])
                # A simulated clock that started over (a restart) goes on from there, not from START_TIME again.
                generation.clock.not_before(teller.book.closed_through)
            except Exception as error:  # Kafka slow or away: stay paused, the next tick tries again
                teller.book.drop(new)
                log.warning("counting shards %s again from Kafka failed (%s); will retry", new, error)
                return
        truth_from = None if teller is None else {shard: teller.truth_from(shard) for shard in new}
        ends = {shard: starts[shard] + self._block for shard in new}
        if ends:
            await keeper.reserve(ends, truth_from)
        if keeper.epoch != epoch or not keeper.settled():
            if teller is not None:
                teller.book.drop(new)  # counted again by whoever starts them
            return  # the assignment changed meanwhile: these reservations stay unused (a gap)
        settings = self._settings
        for shard in new:
            kept[shard] = ShardStream(
                catalog,
                GenerationConfig.from_settings(settings),
                seed=self._seed,
                price_seed=self._price_seed,
                shard=shard,
                shards=settings.generation_shards,
                first_event=starts[shard],
                reserved=ends[shard],
                max_events=settings.max_events,
            )
        generation.hold(dict(sorted(kept.items())))
        keeper.paused = False
        if new:
            log.info(
                "generation shards %s of %d held here; started %s",
                sorted(kept),
                settings.generation_shards,
                ", ".join(f"{shard} at event {starts[shard]}" for shard in new),
            )

    def _reserve_ahead(self, generation: Generation) -> None:
        """Reserve the next block of each stream past half of its current one, in the background."""
        if self._reserving is not None and not self._reserving.done():
            return
        low = {
            shard: stream.reserved + self._block
            for shard, stream in generation.streams.items()
            if not stream.finished and stream.reserved - stream.position < self._block // 2
        }
        keeper = self.keeper
        if low and keeper is not None and not keeper.paused:
            self._reserving = asyncio.ensure_future(self._extend(keeper, generation, low, keeper.epoch))

    async def _extend(self, keeper: ShardKeeper, generation: Generation, ends: dict[int, int], epoch: int) -> None:
        try:
            await keeper.reserve(ends)
        except Exception as error:  # the next tick tries again; the streams wait at the end of their blocks
            log.warning("reserving generation events failed (%s); will retry", type(error).__name__)
            return
        if keeper.epoch != epoch:
            return  # a rebalance began while the reservation was in flight: not used
        for shard, end in ends.items():
            stream = generation.streams.get(shard)
            if stream is not None:
                stream.reserved = max(stream.reserved, end)

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
            if not left and self.generation.publish_open_truth():
                await asyncio.to_thread(self.generation.flush, SHUTDOWN_FLUSH_SECONDS)

    async def _on_revoked(self, sender: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        """Let the records of shards that may move reach Kafka before their next owner counts them."""
        if self.generation is not None and self.generation.streams:
            self.generation.interrupt()
            left = await asyncio.to_thread(self.generation.flush, REVOKE_FLUSH_SECONDS)
            if left:
                log.warning("%d generated records still undelivered while shards may move", left)

    def _stats_view(self) -> type[View]:
        stats, app = self.stats, self._app
        table = SHARDS_TABLE

        class Stats(View):
            """This worker's emission and shards; with the group's (every worker's, over the web) unless ?local."""

            async def get(self, request: Request) -> Response:
                report = stats.report(time.monotonic())
                if "local" not in request.query:
                    report["group"] = await group_report(app, table, report)
                return self.json(report)

        return Stats


#: How long ``/stats/`` waits for another worker's figures.
PEER_TIMEOUT_SECONDS = 1.0


async def group_report(app: faust.App, table: str, local: dict[str, Any]) -> dict[str, Any]:
    """Every worker of the group (from the assignment of the shards table) with its shards and rate, and the sums.

    ``shards`` are those assigned to the worker, ``generating`` those it emits (not yet all while it starts them).

    Other workers are asked for their ``/stats/?local``; one that does not answer within PEER_TIMEOUT_SECONDS is
    listed with ``"reachable": false`` and counts nothing.
    """
    own = str(app.conf.canonical_url).rstrip("/")
    try:
        hosts = app.router.table_metadata(table)
    except Exception:  # before the first assignment
        hosts = {}
    workers: list[dict[str, Any]] = []
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for url, topics in sorted(hosts.items()):
            url = str(url).rstrip("/")
            shards = sorted(partition for partitions in topics.values() for partition in partitions)
            report: dict[str, Any] | None = local if url == own else None
            if report is None:
                try:
                    async with session.get(f"{url}/stats/?local") as response:
                        report = await response.json()
                except Exception:
                    report = None
            workers.append(
                {
                    "url": url,
                    "shards": shards,
                    "generating": report["shards"] if report else [],
                    "reachable": report is not None,
                    "rate_10s": report["rate_10s"] if report else 0.0,
                    "target_eps": report["target_eps"] if report else 0.0,
                }
            )
    return {
        "workers": workers,
        "target_eps": local.get("group_target_eps", 0.0),
        "rate_10s": round(sum(worker["rate_10s"] for worker in workers), 2),
    }
