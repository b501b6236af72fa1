"""GET /metrics of a real worker on the local stack, read with Prometheus's own parser and held against /stats/ and
against Kafka's offsets."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import DEAD_LETTER_REASONS, DEAD_LETTERS, ORDER_KIND, PREFIX
from app.wire.roles import requests_topic
from db.throwaway import create_database, drop_database, dsn_for
from tests.stock_support import high_watermarks
from tests.support import KAFKA_BOOTSTRAP, PG_DSN, Worker, http_get, run_worker, unique_topics, wait_for
from tests.truth_support import count_topics

pytestmark = pytest.mark.integration

TARGET_EPS = 100
MAX_EVENTS = 2000
COUNTERS = ("events_emitted", "late_events", "bad_records", "agent_decisions", "dead_letters", "backpressure_waits")


@dataclass
class Run:
    worker: Worker
    topics: dict[str, str]
    #: Two scrapes and the /stats/ read between them, while the generator was running.
    before: dict[str, Any]
    stats_between: dict
    after: dict[str, Any]

    @property
    def inputs(self) -> list[str]:
        return [self.topics["TOPIC_ORDERS"], requests_topic(self.topics["APP_ID"])]


def scrape(worker: Worker) -> dict[str, Any]:
    """GET /metrics, parsed by prometheus_client: families by name (counters without ``_total``)."""
    with urllib.request.urlopen(worker.url + "/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def values(found: dict[str, Any], name: str, label: str) -> dict[str, float]:
    """The samples of family ``name`` (its ``_total`` or plain samples) by the value of ``label``."""
    family = found[PREFIX + name]
    return {
        sample.labels[label]: sample.value
        for sample in family.samples
        if sample.name in (family.name, family.name + "_total")
    }


def single(found: dict[str, Any], name: str) -> float:
    [sample] = found[PREFIX + name].samples
    return sample.value


def emitted(found: dict[str, Any]) -> float:
    return sum(values(found, "events_emitted", "topic").values())


def local_stats(worker: Worker) -> dict:
    status, stats = http_get(worker.url + "/stats/?local")
    assert status == 200, stats
    return stats


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    name = create_database(PG_DSN, "metricstest")
    topics = unique_topics("metrics")
    settings = {
        **topics,
        "PG_DSN": dsn_for(PG_DSN, name),
        "N_USERS": "300",
        "N_PRODUCTS": "60",
        "N_WAREHOUSES": "3",
        "N_SUPPLIERS": "8",
        "RANDOM_SEED": "41",
        "TARGET_EPS": str(TARGET_EPS),
        "DIURNAL_ENABLED": "false",
        "MAX_EVENTS": str(MAX_EVENTS),
        "P_BAD_RECORD": "0.05",
    }
    try:
        with run_worker(tmp_path_factory.mktemp("metrics"), settings) as worker:
            before: dict[str, Any] = {}

            def running() -> bool:
                nonlocal before
                assert worker.process.poll() is None, worker.log()[-4000:]
                try:
                    before = scrape(worker)
                except OSError:  # not listening yet
                    return False
                return 0 < emitted(before) < MAX_EVENTS / 2

            wait_for(running, "the generator to emit its first events", timeout=120)
            stats = local_stats(worker)
            after: dict[str, Any] = {}

            def grown() -> bool:
                nonlocal after
                after = scrape(worker)
                return emitted(after) > stats["emitted"]

            wait_for(grown, "the emitted counter to grow past /stats/'s figure", timeout=60)
            yield Run(worker, topics, before, stats, after)
    finally:
        drop_database(PG_DSN, name)


def test_counters_only_grow_between_two_scrapes(run: Run) -> None:
    for name in COUNTERS:
        label = {
            "events_emitted": "topic",
            "bad_records": "kind",
            "agent_decisions": "outcome",
            "dead_letters": "reason",
        }.get(name)
        if label is None:
            assert single(run.after, name) >= single(run.before, name), name
            continue
        first, second = values(run.before, name, label), values(run.after, name, label)
        assert set(first) <= set(second), name
        for key, value in first.items():
            assert second[key] >= value, (name, key)


def test_emitted_per_topic_brackets_what_stats_read_between_the_scrapes(run: Run) -> None:
    first, second = values(run.before, "events_emitted", "topic"), values(run.after, "events_emitted", "topic")
    between = {topic: figures["emitted"] for topic, figures in run.stats_between["topics"].items()}
    assert set(between) <= set(second)
    for topic, count in between.items():
        assert first.get(topic, 0) <= count <= second[topic], topic
    assert emitted(run.before) <= run.stats_between["emitted"] < emitted(run.after)


def test_target_and_achieved_rate_while_running(run: Run) -> None:
    assert single(run.after, "target_events_per_second") == pytest.approx(TARGET_EPS)  # one worker: every shard
    assert single(run.after, "group_target_events_per_second") == pytest.approx(TARGET_EPS)
    assert single(run.after, "generation_shards") == run.stats_between["shards"].__len__()
    assert values(run.after, "generation_state", "state") == {"running": 1}
    # The gauge counts complete seconds only: a scrape in the generator's first second may still read 0.
    rates: dict[str, float] = {}

    def measured() -> bool:
        nonlocal rates
        rates = values(scrape(run.worker), "events_per_second", "topic")
        return sum(rates.values()) > 0

    wait_for(measured, "the achieved rate to show a complete second of emission", timeout=15)
    assert set(rates) <= set(values(run.after, "events_emitted", "topic"))


def test_lag_is_exported_for_each_input_topic(run: Run) -> None:
    found: dict[str, Any] = {}

    def listed() -> bool:
        nonlocal found
        found = scrape(run.worker)
        return set(values(found, "consumer_lag_records", "topic")) == set(run.inputs)

    wait_for(listed, "the lag of both input topics", timeout=60)
    assert all(lag >= 0 for lag in values(found, "consumer_lag_records", "topic").values())


def test_once_finished_every_figure_equals_stats(run: Run) -> None:
    run.worker.wait_until_logged("MAX_EVENTS=", timeout=MAX_EVENTS / TARGET_EPS * 3 + 60)
    found: dict[str, Any] = {}
    stats: dict = {}

    def still() -> bool:
        """/stats/ read the same figures just before and just after /metrics: compare both sides then."""
        nonlocal found, stats
        stats = local_stats(run.worker)
        found = scrape(run.worker)
        again = local_stats(run.worker)
        return all(stats[key] == again[key] for key in ("agents", "topics", "bad_records", "late_events"))

    wait_for(still, "the agents to finish deciding", timeout=180)
    assert values(found, "events_emitted", "topic") == {t: f["emitted"] for t, f in stats["topics"].items()}
    assert emitted(found) == stats["emitted"] == MAX_EVENTS
    assert single(found, "late_events") == stats["late_events"]
    bad = values(found, "bad_records", "kind")
    assert {kind: count for kind, count in bad.items() if count} == stats["bad_records"]
    assert sum(bad.values()) > 0  # P_BAD_RECORD > 0
    decisions = values(found, "agent_decisions", "outcome")
    assert decisions == {outcome: n for outcome, n in stats["agents"].items() if outcome != DEAD_LETTERS}
    assert values(found, "generation_state", "state") == {stats["state"]: 1}


def test_once_finished_events_by_kind_equal_a_consumers_count_of_the_topics(run: Run) -> None:
    run.worker.wait_until_logged("MAX_EVENTS=", timeout=MAX_EVENTS / TARGET_EPS * 3 + 60)
    found = scrape(run.worker)  # the generator is done: nothing it counts changes any more
    topics = run.topics
    generated = {
        topics["TOPIC_ORDERS"]: topics["TOPIC_ORDERS"],
        topics["TOPIC_CUSTOMER_INTERACTIONS"]: topics["TOPIC_CUSTOMER_INTERACTIONS"],
        requests_topic(topics["APP_ID"]): topics["TOPIC_INVENTORY_CHANGES"],  # the agents are on
    }
    consumer: dict[tuple[str, str], float] = {}
    late: dict[str, float] = {}
    for entry in count_topics(generated).values():  # read to the high watermarks, per (shard, minute)
        pairs = [(("orders", ORDER_KIND), entry["orders"])]
        pairs += [(("customer_interactions", kind), n) for kind, n in entry["interactions"].items()]
        pairs += [(("inventory_changes", kind), n) for kind, n in entry["inventory_changes"].items()]
        for key, n in pairs:
            consumer[key] = consumer.get(key, 0) + n
        for topic, n in entry["late_events"].items():
            late[topic] = late.get(topic, 0) + n
    exported = {
        (sample.labels["role"], sample.labels["kind"]): sample.value
        for sample in found[f"{PREFIX}events_by_kind"].samples
        if sample.name.endswith("_total")
    }
    assert {key: n for key, n in exported.items() if n} == {key: n for key, n in consumer.items() if n}
    assert consumer["orders", ORDER_KIND] > 0
    assert len([key for key in consumer if key[0] == "customer_interactions"]) >= 2
    late_exported = values(found, "late_events_by_topic", "topic")
    assert {topic: n for topic, n in late_exported.items() if n} == {topic: n for topic, n in late.items() if n}
    # late_events counts bad records drawn late as well; the truth counts good ones only.
    assert 0 < sum(late_exported.values()) <= single(found, "late_events")


def test_dead_letters_by_reason_add_up_to_the_agents_count(run: Run) -> None:
    found: dict[str, Any] = {}
    stats: dict = {}

    def agree() -> bool:
        nonlocal found, stats
        found = scrape(run.worker)
        stats = local_stats(run.worker)
        return sum(values(found, "dead_letters", "reason").values()) == stats["agents"].get(DEAD_LETTERS, 0) > 0

    wait_for(agree, "dead letters in /metrics and /stats/ alike", timeout=120)
    assert set(values(found, "dead_letters", "reason")) == set(DEAD_LETTER_REASONS)
    assert values(found, "dead_letters", "reason")["undecodable"] > 0  # byte-level bad records


def test_batches_cover_every_order_and_the_lag_drains_to_what_kafka_says(run: Run) -> None:
    run.worker.wait_until_logged("MAX_EVENTS=", timeout=MAX_EVENTS / TARGET_EPS * 3 + 60)
    found: dict[str, Any] = {}

    def drained() -> bool:
        nonlocal found
        found = scrape(run.worker)
        return values(found, "consumer_lag_records", "topic") == dict.fromkeys(run.inputs, 0)

    wait_for(drained, "the agents to decide and commit every input record", timeout=180)
    assert _group_lag(run.topics["APP_ID"], run.inputs) == dict.fromkeys(run.inputs, 0)
    orders = values(found, "events_emitted", "topic")[run.topics["TOPIC_ORDERS"]]
    taken = {
        sample.labels["agent"]: sample.value
        for sample in found[f"{PREFIX}agent_batch_records"].samples
        if sample.name.endswith("_sum")
    }
    assert taken["orders"] >= orders > 0  # every order was in a batch (a redelivery would count it again)
    assert taken["stock"] > 0
    stages = {
        (sample.labels["agent"], sample.labels["stage"]): sample.value
        for sample in found[f"{PREFIX}agent_batch_duration_seconds"].samples
        if sample.name.endswith("_count")
    }
    assert all(stages[agent, "decide"] >= stages[agent, "deliver"] > 0 for agent in ("orders", "stock"))
    queued = values(found, "producer_queued_records", "producer")
    assert set(queued) == {"generator", "agents"}


def _group_lag(group: str, topics: list[str]) -> dict[str, int]:
    """High watermark minus the group's committed offset, summed per topic, asked of Kafka."""
    consumer = Consumer({"bootstrap.servers": KAFKA_BOOTSTRAP, "group.id": group, "enable.auto.commit": False})
    try:
        lag = {}
        for topic in topics:
            ends = high_watermarks(topic)
            committed = consumer.committed([TopicPartition(topic, p) for p in ends], timeout=10)
            lag[topic] = sum(ends[c.partition] - max(c.offset, 0) for c in committed)
        return lag
    finally:
        consumer.close()

