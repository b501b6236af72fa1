"""GET /metrics: what the collector exports for given figures, as Prometheus's parser reads it, and what the agents
count in their batches and dead letters."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from faust.types import TP
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from agents.intake import Intake
from agents.ledger import Decided
from agents.orders import OrdersAgent
from agents.stock import StockAgent
from app.decoding import RecordDecoder
from app.generation import BAD_KINDS
from app.main import create_app
from app.metrics import (
    DEAD_LETTER_REASONS,
    DEAD_LETTERS,
    METRICS_PATH,
    ORDER_KIND,
    PREFIX,
    AgentMeters,
    DatagenCollector,
    agent_meters,
    lag_by_topic,
    metrics_registry,
)
from app.settings import load_settings
from app.stats import EmissionStats
from app.truth import MINUTE_MS, TruthBook
from tests.unit.support import RecordingProducer

DSN = "host=127.0.0.1 dbname=demo user=admin password=admin"
NOW = 110.0


class App:
    """Stands for a Faust app: the meters are found by it (any object that can be weakly referenced)."""


def families(text: str) -> dict[str, Any]:
    """Metric families by name (counters without ``_total``, as the parser names them)."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def by_label(family: Any, label: str, name: str | None = None) -> dict[str, float]:
    samples: list[Sample] = family.samples
    return {sample.labels[label]: sample.value for sample in samples if name is None or sample.name == name}


def scrape(stats: EmissionStats, meters: AgentMeters, lag: Callable[[], dict[str, int]] = dict) -> dict[str, Any]:
    registry = metrics_registry(DatagenCollector(stats, meters, lag, clock=lambda: NOW))
    return families(generate_latest(registry).decode())


def figures() -> EmissionStats:
    stats = EmissionStats(target_eps=2.5, group_target_eps=5.0, shards=[0, 3], diurnal_factor=0.9, state="running")
    stats.simulated_ms, stats.backfilling = 1_795_996_800_500, True
    stats.add("orders.v1", 40, now=101.2)
    stats.add("orders.v1", 30, now=109.5)
    stats.add("customer-interactions.v1", 10, now=95.0)  # outside the last 10 s
    stats.late_events = 4
    stats.bad_records["wrong_magic_byte"] = 2
    stats.agents.update({"orders decided": 60, "shipped": 41, "not shipped: payment declined": 3, DEAD_LETTERS: 3})
    stats.ledger.update({"backlog": 7, "scheduled": 12, "outbox pending deletes": 1})
    stats.backpressure_waits, stats.pending, stats.shortfall = 5, 11, 6
    return stats


# ----- the collector


def test_emission_is_exported_per_topic_with_counter_and_gauge_types() -> None:
    found = scrape(figures(), AgentMeters())
    emitted = found[f"{PREFIX}events_emitted"]
    assert emitted.type == "counter"
    assert {sample.name for sample in emitted.samples} == {f"{PREFIX}events_emitted_total"}
    assert by_label(emitted, "topic") == {"orders.v1": 70, "customer-interactions.v1": 10}
    rate = found[f"{PREFIX}events_per_second"]
    assert rate.type == "gauge"
    assert by_label(rate, "topic") == {"orders.v1": 7.0, "customer-interactions.v1": 0.0}


@pytest.mark.parametrize(
    ("name", "kind", "value"),
    [
        ("target_events_per_second", "gauge", 2.5),
        ("group_target_events_per_second", "gauge", 5.0),
        ("diurnal_factor", "gauge", 0.9),
        ("simulated_time_seconds", "gauge", 1_795_996_800.5),
        ("backfilling", "gauge", 1),
        ("generation_shards", "gauge", 2),
        ("late_events", "counter", 4),
        ("backpressure_waits", "counter", 5),
        ("shortfall_events", "counter", 6),
    ],
)
def test_single_figures(name: str, kind: str, value: float) -> None:
    family = scrape(figures(), AgentMeters())[PREFIX + name]
    assert family.type == kind
    [sample] = family.samples
    assert sample.labels == {}
    assert sample.value == value
    assert sample.name == PREFIX + name + ("_total" if kind == "counter" else "")


def test_the_generation_state_is_one_sample_labelled_with_it() -> None:
    [sample] = scrape(figures(), AgentMeters())[f"{PREFIX}generation_state"].samples
    assert (sample.labels, sample.value) == ({"state": "running"}, 1)


def test_bad_records_list_every_kind_from_zero() -> None:
    bad = scrape(figures(), AgentMeters())[f"{PREFIX}bad_records"]
    assert bad.type == "counter"
    assert by_label(bad, "kind") == {kind: (2 if kind == "wrong_magic_byte" else 0) for kind in BAD_KINDS}


def test_agent_decisions_are_the_stats_agents_counter_without_dead_letters() -> None:
    decisions = scrape(figures(), AgentMeters())[f"{PREFIX}agent_decisions"]
    assert decisions.type == "counter"
    assert by_label(decisions, "outcome") == {"orders decided": 60, "shipped": 41, "not shipped: payment declined": 3}


def test_dead_letters_by_reason_from_zero() -> None:
    meters = AgentMeters()
    meters.dead_letter("undecodable")
    meters.dead_letter("undecodable")
    meters.dead_letter("bad_key")
    dead = scrape(figures(), meters)[f"{PREFIX}dead_letters"]
    assert dead.type == "counter"
    assert by_label(dead, "reason") == {**dict.fromkeys(DEAD_LETTER_REASONS, 0), "undecodable": 2, "bad_key": 1}


def test_the_ledger_figures_are_gauges_with_label_safe_names() -> None:
    ledger = scrape(figures(), AgentMeters())[f"{PREFIX}ledger_items"]
    assert ledger.type == "gauge"
    assert by_label(ledger, "item") == {"backlog": 7, "scheduled": 12, "outbox_pending_deletes": 1}


def test_consumer_lag_per_input_topic_is_read_when_scraped() -> None:
    lag = {"orders.v1": 5, "app-stock-requests": 0}
    family = scrape(figures(), AgentMeters(), lambda: lag)[f"{PREFIX}consumer_lag_records"]
    assert family.type == "gauge"
    assert by_label(family, "topic") == lag
    lag["orders.v1"] = 2
    assert by_label(scrape(figures(), AgentMeters(), lambda: lag)[f"{PREFIX}consumer_lag_records"], "topic") == lag


def test_producer_queues_of_the_generator_and_the_agents() -> None:
    meters = AgentMeters()
    meters.producers["agents"] = lambda: 13
    queued = scrape(figures(), meters)[f"{PREFIX}producer_queued_records"]
    assert queued.type == "gauge"
    assert by_label(queued, "producer") == {"generator": 11, "agents": 13}


def test_batch_histograms() -> None:
    meters = AgentMeters()
    orders = meters.batches("orders")
    orders.decided(40, 0.02)
    orders.decided(3, 0.004)
    orders.delivered(0.3)
    found = scrape(figures(), meters)
    records = found[f"{PREFIX}agent_batch_records"]
    assert records.type == "histogram"
    counts = {sample.name: sample.value for sample in records.samples if sample.labels.get("agent") == "orders"}
    assert counts[f"{PREFIX}agent_batch_records_count"] == 2
    assert counts[f"{PREFIX}agent_batch_records_sum"] == 43
    buckets = {s.labels["le"]: s.value for s in records.samples if s.name.endswith("_bucket")}
    assert (buckets["1.0"], buckets["10.0"], buckets["50.0"], buckets["+Inf"]) == (0, 1, 2, 2)
    seconds = found[f"{PREFIX}agent_batch_duration_seconds"]
    assert seconds.type == "histogram"
    count = {
        sample.labels["stage"]: sample.value
        for sample in seconds.samples
        if sample.name.endswith("_count") and sample.labels["agent"] == "orders"
    }
    assert count == {"decide": 2, "deliver": 1}


def test_events_by_kind_and_late_events_by_topic_are_what_the_truth_book_counted_so_far() -> None:
    book = TruthBook()
    counts = book.counts(0, 0)
    for interaction in ("PAGE_VIEW", "PAGE_VIEW", "SEARCH"):
        counts.add("interactions.v1", "customer_interactions", {"interaction_type": interaction}, False, None)
    counts.add("orders.v1", "orders", {"quantity": 2, "amount": 900, "currency": "USD"}, True, None)
    book.counts(1, MINUTE_MS).add("requests", "inventory_changes", {"change_type": "RESTOCK"}, False, None)
    book.counts(1, MINUTE_MS).add("orders.v1", "orders", None, False, "undecodable")  # bad: no kind of its own
    book.settle(MINUTE_MS)
    book.take(0)  # published minutes stay counted
    registry = metrics_registry(DatagenCollector(EmissionStats(), AgentMeters(), clock=lambda: NOW, kinds=book.so_far))
    found = families(generate_latest(registry).decode())
    kinds = {
        (sample.labels["role"], sample.labels["kind"]): sample.value
        for sample in found[f"{PREFIX}events_by_kind"].samples
        if sample.name.endswith("_total")
    }
    assert kinds == {
        ("orders", ORDER_KIND): 1,
        ("customer_interactions", "PAGE_VIEW"): 2,
        ("customer_interactions", "SEARCH"): 1,
        ("inventory_changes", "RESTOCK"): 1,
    }
    assert by_label(found[f"{PREFIX}late_events_by_topic"], "topic", f"{PREFIX}late_events_by_topic_total") == {
        "orders.v1": 1
    }


def test_without_the_truth_the_by_kind_families_are_there_and_empty() -> None:
    found = scrape(figures(), AgentMeters())
    assert found[f"{PREFIX}events_by_kind"].samples == []
    assert found[f"{PREFIX}late_events_by_topic"].samples == []


def test_an_empty_worker_exports_every_family() -> None:
    found = scrape(EmissionStats(), AgentMeters())
    assert f"{PREFIX}events_emitted" in found
    assert f"{PREFIX}agent_batch_records" in found
    assert all(name.startswith(PREFIX) for name in found)


# ----- lag


def test_lag_sums_highwater_minus_committed_over_the_assigned_partitions_of_each_topic() -> None:
    partitions = [TP("orders", 0), TP("orders", 1), TP("requests", 0), TP("other", 0), TP("requests", 1)]
    highwater = {TP("orders", 0): 10, TP("orders", 1): 7, TP("requests", 0): 4, TP("other", 0): 99}
    committed = {TP("orders", 0): 6, TP("orders", 1): 7, TP("requests", 0): 4, TP("requests", 1): 3}
    found = lag_by_topic(["orders", "requests"], partitions, highwater.get, committed)
    assert found == {"orders": 4, "requests": 0}  # requests/1: no high watermark known yet, counts nothing


def test_lag_of_a_partition_without_a_committed_offset_or_revoked_counts_nothing() -> None:
    def highwater(tp: TP) -> int:
        if tp.partition == 2:
            raise KeyError(tp)  # revoked between the assignment and this call
        return 50

    partitions = [TP("orders", 0), TP("orders", 1), TP("orders", 2)]
    assert lag_by_topic(["orders"], partitions, highwater, {TP("orders", 1): 45, TP("orders", 2): 0}) == {"orders": 5}


def test_lag_lists_every_input_topic_even_without_partitions_here() -> None:
    assert lag_by_topic(["orders", "requests"], [], lambda tp: 0, {}) == {"orders": 0, "requests": 0}


# ----- the agents


def event(app: App, value: bytes, key: bytes = b"k", offset: int = 0) -> Any:
    message = SimpleNamespace(topic="in", partition=0, offset=offset, key=key, timestamp=1.0, headers=[])
    return SimpleNamespace(app=app, value=value, message=message)


@dataclass
class Stream:
    """A Faust stream of given batches: what the agents' ``run`` takes."""

    app: App
    batches: list[list[Any]]
    acked: list[Any] = field(default_factory=list)

    async def noack_take(self, max_: int, within: float) -> AsyncIterator[list[Any]]:
        for batch in self.batches:
            yield batch

    async def ack(self, event: Any) -> bool:
        self.acked.append(event)
        return True


def decoder() -> RecordDecoder:
    """The real decoder; no record here reaches the registry (nothing is Confluent-framed)."""
    return RecordDecoder(SchemaRegistryClient({"url": "http://127.0.0.1:9"}))


class Ordering:
    """A decoder that reads every record as one fixed order."""

    def decode(self, topic: str, raw: bytes | None) -> dict[str, Any]:
        return {"order_id": "o-1", "quantity": -1}


def test_a_dead_letter_is_counted_by_reason_and_in_the_stats_alike() -> None:
    app, producer, counts = App(), RecordingProducer(), Counter[str]()
    intake = Intake(decoder(), producer, "dlq", counts)  # type: ignore[arg-type]
    intake.dead_letter(event(app, b"x", key=b"abc"), "key b'abc': expected a product id", "bad_key")
    asyncio.run(intake.value(event(app, b"\x01nope"), "orders.v1", lambda value: None, "order", "invalid_order"))
    invalid = Intake(Ordering(), producer, "dlq", counts)  # type: ignore[arg-type]
    asyncio.run(invalid.value(event(app, b"\x00"), "orders.v1", lambda value: "negative", "order", "invalid_order"))
    assert agent_meters(app).dead_letters == {"bad_key": 1, "undecodable": 1, "invalid_order": 1}
    assert counts[DEAD_LETTERS] == 3 == len(producer.sent)
    assert [topic for topic, _, _, _, _ in producer.sent] == ["dlq"] * 3


def test_the_orders_agent_times_each_batch_and_registers_its_producer() -> None:
    app, producer, counts = App(), RecordingProducer(), Counter[str]()
    intake = Intake(decoder(), producer, "dlq", counts)  # type: ignore[arg-type]
    topics = {"orders": "orders.v1", "payments": "payments.v1"}
    agent = OrdersAgent(intake, None, producer, topics, "requests", None, counts, lambda: False)  # type: ignore[arg-type]
    stream = Stream(app, [[event(app, b"\x01", offset=n) for n in range(3)], [event(app, b"\x02", offset=3)]])
    asyncio.run(agent.run(stream))  # type: ignore[arg-type]
    assert len(stream.acked) == 4
    found = scrape(EmissionStats(agents=counts), agent_meters(app))
    records = found[f"{PREFIX}agent_batch_records"]
    assert by_label(records, "agent", f"{PREFIX}agent_batch_records_count") == {"orders": 2}
    assert by_label(records, "agent", f"{PREFIX}agent_batch_records_sum") == {"orders": 4}
    seconds = found[f"{PREFIX}agent_batch_duration_seconds"]
    count = {s.labels["stage"]: s.value for s in seconds.samples if s.name.endswith("_count")}
    assert count == {"decide": 2, "deliver": 2}
    assert by_label(found[f"{PREFIX}producer_queued_records"], "producer") == {"generator": 0, "agents": 0}
    assert by_label(found[f"{PREFIX}dead_letters"], "reason")["undecodable"] == 4


class Ledger:
    """A ledger with nothing in its outbox that decides every batch to no records."""

    async def undelivered(self) -> Decided:
        return Decided()

    async def decide(self, requests: list[Any]) -> Decided:
        return Decided()

    async def delivered(self, decided: Decided) -> None:
        return None


class Codec:
    def encode(self, role: str, value: Any) -> bytes:
        raise AssertionError("nothing to encode")


def test_the_stock_agent_times_each_batch_and_counts_bad_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(status: int) -> None:
        raise AssertionError(f"the stock agent would have exited with {status}")

    monkeypatch.setattr("agents.stock.os._exit", fail)  # the agent's answer to an error: not the test process's
    app, producer, counts = App(), RecordingProducer(), Counter[str]()
    intake = Intake(decoder(), producer, "dlq", counts)  # type: ignore[arg-type]
    agent = StockAgent(Ledger(), intake, Codec(), producer, {}, "requests", counts, lambda: False)  # type: ignore[arg-type]
    stream = Stream(app, [[event(app, b"{}", key=b"not-a-product", offset=n) for n in range(5)]])
    asyncio.run(agent.run(stream))  # type: ignore[arg-type]
    found = scrape(EmissionStats(agents=counts), agent_meters(app))
    records = found[f"{PREFIX}agent_batch_records"]
    assert by_label(records, "agent", f"{PREFIX}agent_batch_records_sum") == {"stock": 5}
    assert by_label(found[f"{PREFIX}dead_letters"], "reason")["bad_key"] == 5
    assert by_label(found[f"{PREFIX}agent_decisions"], "outcome") == {"stock batches": 1}


# ----- the route


def _metrics_of(app: Any) -> tuple[str, str]:
    view = app.web.views[METRICS_PATH]
    response = asyncio.run(view.get(None))
    return response.headers["Content-Type"], response.body.decode()


def test_each_app_serves_its_own_registry_in_the_text_format() -> None:
    first = create_app(load_settings({"PG_DSN": DSN, "APP_ID": "metrics-a"}))
    second = create_app(load_settings({"PG_DSN": DSN, "APP_ID": "metrics-b", "AGENTS_ENABLED": "false"}))
    agent_meters(first).dead_letter("bad_key")
    content_type, text = _metrics_of(first)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert by_label(families(text)[f"{PREFIX}dead_letters"], "reason")["bad_key"] == 1
    _, other = _metrics_of(second)
    assert by_label(families(other)[f"{PREFIX}dead_letters"], "reason")["bad_key"] == 0
    # Not started: no consumer to read offsets from, so no lag yet.
    assert families(text)[f"{PREFIX}consumer_lag_records"].samples == []


def test_no_secret_reaches_the_metrics() -> None:
    secret = "s3cr3t-Pa55"
    settings = load_settings(
        {
            "PG_DSN": f"host=127.0.0.1 dbname=demo user=admin password={secret}",
            "SCHEMA_REGISTRY_BASIC_AUTH": f"user:{secret}",
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_USERNAME": "datagen",
            "KAFKA_SASL_PASSWORD": secret,
        }
    )
    _, text = _metrics_of(create_app(settings))
    assert secret not in text
