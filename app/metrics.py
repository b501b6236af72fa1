"""``GET /metrics``: the worker's figures in Prometheus's text exposition format, read where they live when scraped.

Nothing is counted twice: the collector reads ``EmissionStats`` (which the generator and the agents fill), the Faust
consumer's offsets and the producers' queues at scrape time. Only what nothing else holds is kept here, per app
(``AgentMeters``): dead letters by reason, and the agents' batch sizes and durations, observed once per batch.
Each app has its own ``CollectorRegistry``, never the process-wide default one, so several apps live in one process.
"""

from __future__ import annotations

import time
import weakref
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Literal, get_args

from faust.transport.consumer import Consumer
from faust.types import TP, AppT
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from app.generation import BAD_KINDS
from app.settings import Settings
from app.stats import EmissionStats
from app.truth import MinuteCounts
from app.wire.roles import CUSTOMER_INTERACTIONS, INVENTORY_CHANGES, ORDERS, requests_topic

#: The prefix of every metric name this project exports.
PREFIX = "retail_datagen_"
#: The kind label of orders in ``events_by_kind`` (the other kinds are the schemas' enum symbols).
ORDER_KIND = "order"
#: The path Prometheus scrapes.
METRICS_PATH = "/metrics"

#: Why a record was dead-lettered: a small fixed set (the class of reason, never its text, which names ids).
DeadLetterReason = Literal[
    "undecodable",  # no value to be had: empty, not Confluent-framed, an unknown schema id, a body Avro cannot read
    "invalid_order",  # decoded, but not an order the agents can decide
    "invalid_change",  # a background inventory change that is invalid, of another product, or a SALE
    "bad_key",  # a stock request whose key is no product id
    "unknown_product",  # a stock request keyed by a product the catalogue does not hold
    "invalid_order_request",  # a forwarded order that is not JSON, or whose order or payment is invalid
    "invalid_opening_balance",  # an opening balance that is not a JSON inventory change
]
DEAD_LETTER_REASONS: tuple[str, ...] = get_args(DeadLetterReason)
#: The key under which the agents count every dead letter in ``EmissionStats.agents``.
DEAD_LETTERS = "dead letters"

#: Batches hold 1 to 10,000 records (``BATCH_MAX`` of both agents).
BATCH_RECORD_BUCKETS = (1, 10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000)
#: From a millisecond (a batch decided in memory) to half a minute (a batch waiting for Kafka or Postgres).
BATCH_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class BatchMeter:
    """One agent's batches: their sizes, how long deciding took and how long until Kafka had their records."""

    def __init__(self, records: Histogram, seconds: Histogram, agent: str) -> None:
        self._records = records.labels(agent=agent)
        self._decide = seconds.labels(agent=agent, stage="decide")
        self._deliver = seconds.labels(agent=agent, stage="deliver")

    def decided(self, size: int, seconds: float) -> None:
        """A batch of ``size`` records was decided (its records handed to the producer) in ``seconds``."""
        self._records.observe(size)
        self._decide.observe(seconds)

    def delivered(self, seconds: float) -> None:
        """Kafka acknowledged a decided batch's records, and its input was acknowledged, ``seconds`` after."""
        self._deliver.observe(seconds)


class AgentMeters:
    """What the agents report that ``EmissionStats`` does not hold: dead letters by reason, batches, producers."""

    def __init__(self) -> None:
        self.dead_letters: Counter[str] = Counter()
        #: Records each producer holds undelivered, by producer name (the agents register theirs when they start).
        self.producers: dict[str, Callable[[], int]] = {}
        # Not registered anywhere: the app's collector yields them with its own figures.
        self.batch_records = Histogram(
            f"{PREFIX}agent_batch_records",
            "Records in each batch an agent took.",
            ["agent"],
            buckets=BATCH_RECORD_BUCKETS,
            registry=None,
        )
        self.batch_seconds = Histogram(
            f"{PREFIX}agent_batch_duration_seconds",
            "Per batch: deciding it (stage=decide), then until Kafka had its records and its input was acknowledged "
            "(stage=deliver).",
            ["agent", "stage"],
            buckets=BATCH_SECONDS_BUCKETS,
            registry=None,
        )

    def batches(self, agent: str) -> BatchMeter:
        """The meter of ``agent``'s batches."""
        return BatchMeter(self.batch_records, self.batch_seconds, agent)

    def dead_letter(self, reason: DeadLetterReason) -> None:
        """Count one dead letter of ``reason``."""
        self.dead_letters[reason] += 1


#: Each app's meters. The agents are built by FulfilmentAgents, which does not hand them meters: they find their
#: app's through the stream and the events they are given. Weak keys: an app that goes takes its meters with it.
_METERS: weakref.WeakKeyDictionary[AppT, AgentMeters] = weakref.WeakKeyDictionary()


def agent_meters(app: AppT) -> AgentMeters:
    """The meters of ``app``'s agents (made on first use)."""
    meters = _METERS.get(app)
    if meters is None:
        meters = _METERS[app] = AgentMeters()
    return meters


def consumer_lag(app: AppT, topics: Collection[str]) -> dict[str, int]:
    """Input records not yet decided, per topic of ``topics``, over this worker's assigned partitions (see
    ``lag_by_topic``); {} while the consumer is not running."""
    if not topics:
        return {}
    consumer = app.consumer  # a worker's web server serves only once the app has made its consumer
    if not isinstance(consumer, Consumer):
        return {}
    try:
        assigned = consumer.assignment()
    except Exception:  # not started yet, or stopped
        return {}
    # Faust keeps the offsets it committed, or sought to at assignment (app/fast_consumer.py relies on them too).
    return lag_by_topic(topics, assigned, consumer.highwater, consumer._committed_offset)


def lag_by_topic(
    topics: Collection[str],
    partitions: Iterable[TP],
    highwater: Callable[[TP], int | None],
    committed: Mapping[TP, int | None],
) -> dict[str, int]:
    """Per topic of ``topics``: the sum over ``partitions`` of the high watermark minus the committed offset, the
    records not yet decided. A partition whose figures are not known yet (nothing fetched, nothing committed, or
    revoked meanwhile) counts nothing."""
    found = dict.fromkeys(topics, 0)
    for tp in partitions:
        if tp.topic not in found:
            continue
        try:
            end = highwater(tp)
        except Exception:  # revoked meanwhile
            continue
        offset = committed.get(tp)
        if end is not None and offset is not None:
            found[tp.topic] += max(0, end - offset)
    return found


def agent_inputs(settings: Settings) -> list[str]:
    """The topics the agents consume: orders.v1 and the stock requests topic ([] without agents)."""
    if not settings.agents_enabled:
        return []
    return [settings.topics()[ORDERS], requests_topic(settings.app_id)]


class DatagenCollector(Collector):
    """Reads the generator's and the agents' figures when Prometheus scrapes."""

    def __init__(
        self,
        stats: EmissionStats,
        meters: AgentMeters,
        lag: Callable[[], Mapping[str, int]] = dict,
        *,
        clock: Callable[[], float] = time.monotonic,
        kinds: Callable[[], MinuteCounts | None] = lambda: None,
    ) -> None:
        """``lag()``: input records not yet decided per agent input topic; ``clock``: the stats' monotonic clock;
        ``kinds()``: what the generator's truth counted so far (``TruthBook.so_far``), None with the truth off."""
        self._stats = stats
        self._meters = meters
        self._lag = lag
        self._clock = clock
        self._kinds = kinds

    def collect(self) -> Iterable[Metric]:
        yield from self._generation(self._stats, self._clock())
        yield from self._by_kind(self._kinds())
        yield from self._agents(self._stats, self._meters)
        yield from self._producers(self._stats, self._meters)
        yield from self._meters.batch_records.collect()
        yield from self._meters.batch_seconds.collect()

    @staticmethod
    def _generation(stats: EmissionStats, now: float) -> Iterator[Metric]:
        emitted = CounterMetricFamily(f"{PREFIX}events_emitted", "Events the generator emitted.", labels=["topic"])
        rate = GaugeMetricFamily(
            f"{PREFIX}events_per_second", "Events emitted per second over the last 10 s.", labels=["topic"]
        )
        for topic, meter in sorted(stats.meters.items()):
            emitted.add_metric([topic], meter.total)
            rate.add_metric([topic], meter.rate(now, 10))
        yield emitted
        yield rate
        yield _gauge("target_events_per_second", "This worker's share of the target rate.", stats.target_eps)
        yield _gauge("group_target_events_per_second", "The target rate of the whole APP_ID.", stats.group_target_eps)
        yield _gauge("diurnal_factor", "The diurnal factor of the target rate.", stats.diurnal_factor)
        yield _gauge("simulated_time_seconds", "The simulated clock, epoch seconds.", stats.simulated_ms / 1000)
        yield _gauge("backfilling", "1 while the generator makes history (BACKFILL), else 0.", int(stats.backfilling))
        yield _gauge("generation_shards", "Generation shards this worker emits.", len(stats.shards))
        state = GaugeMetricFamily(f"{PREFIX}generation_state", "The generator's state (1).", labels=["state"])
        state.add_metric([stats.state], 1)
        yield state
        yield _counter("late_events", "Events emitted with an event time behind their emission.", stats.late_events)
        bad = CounterMetricFamily(f"{PREFIX}bad_records", "Deliberately malformed records, by kind.", labels=["kind"])
        for kind in sorted({*BAD_KINDS, *stats.bad_records}):
            bad.add_metric([kind], stats.bad_records[kind])
        yield bad
        yield _counter("backpressure_waits", "Waits for room in the producer's full queue.", stats.backpressure_waits)
        yield _counter("shortfall_events", "Events the target asked for that could not go out.", stats.shortfall)

    @staticmethod
    def _by_kind(counts: MinuteCounts | None) -> Iterator[Metric]:
        """The good events by role and kind, and late events by topic, as the truth counts them (empty with
        TRUTH_ENABLED=false: the generator counts them only for the truth, never once more per record)."""
        kinds = CounterMetricFamily(
            f"{PREFIX}events_by_kind",
            "Good events the generator emitted, by role and kind (order, interaction type, change type).",
            labels=["role", "kind"],
        )
        late = CounterMetricFamily(
            f"{PREFIX}late_events_by_topic", "Good events emitted with an event time behind it, by topic.",
            labels=["topic"],
        )
        if counts is not None:
            kinds.add_metric([ORDERS, ORDER_KIND], counts.orders)
            typed = ((CUSTOMER_INTERACTIONS, counts.interactions), (INVENTORY_CHANGES, counts.inventory_changes))
            for role, found in typed:
                for kind, count in sorted(found.items()):
                    kinds.add_metric([role, kind], count)
            for topic, count in sorted(counts.late_events.items()):
                late.add_metric([topic], count)
        yield kinds
        yield late

    def _agents(self, stats: EmissionStats, meters: AgentMeters) -> Iterator[Metric]:
        decisions = CounterMetricFamily(
            f"{PREFIX}agent_decisions", "What the agents did, as /stats/ shows it under agents.", labels=["outcome"]
        )
        for outcome, count in sorted(stats.agents.items()):
            if outcome != DEAD_LETTERS:
                decisions.add_metric([outcome], count)
        yield decisions
        dead = CounterMetricFamily(f"{PREFIX}dead_letters", "Records dead-lettered by the agents.", labels=["reason"])
        for reason in sorted({*DEAD_LETTER_REASONS, *meters.dead_letters}):
            dead.add_metric([reason], meters.dead_letters[reason])
        yield dead
        ledger = GaugeMetricFamily(
            f"{PREFIX}ledger_items",
            "The stock ledger as this worker holds it: backlog (orders waiting for stock), scheduled, ...",
            labels=["item"],
        )
        for item, count in sorted(stats.ledger.items()):
            ledger.add_metric([item.replace(" ", "_")], count)
        yield ledger
        lag = GaugeMetricFamily(
            f"{PREFIX}consumer_lag_records",
            "Input records not yet decided: high watermark minus committed offset over this worker's partitions.",
            labels=["topic"],
        )
        for topic, records in sorted(self._lag().items()):
            lag.add_metric([topic], records)
        yield lag

    @staticmethod
    def _producers(stats: EmissionStats, meters: AgentMeters) -> Iterator[Metric]:
        queued = GaugeMetricFamily(
            f"{PREFIX}producer_queued_records", "Records waiting in a producer for delivery.", labels=["producer"]
        )
        queued.add_metric(["generator"], stats.pending)
        for name, count in sorted(meters.producers.items()):
            queued.add_metric([name], count())
        yield queued


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}{name}", documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}{name}", documentation, value=value)


def metrics_registry(collector: Collector) -> CollectorRegistry:
    """A registry of its own holding ``collector``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def register_metrics(
    app: AppT, settings: Settings, stats: EmissionStats, kinds: Callable[[], MinuteCounts | None] = lambda: None
) -> CollectorRegistry:
    """Serve ``GET /metrics`` on ``app``'s web server from a registry of the app's own; the registry.

    ``kinds()``: the generator's truth counted so far (see ``DatagenCollector``)."""
    inputs = agent_inputs(settings)
    collector = DatagenCollector(stats, agent_meters(app), lambda: consumer_lag(app, inputs), kinds=kinds)
    registry = metrics_registry(collector)

    class Metrics(View):
        """The worker's figures in Prometheus's text exposition format (0.0.4)."""

        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    app.page(METRICS_PATH)(Metrics)
    return registry
