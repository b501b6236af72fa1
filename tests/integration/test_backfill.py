"""BACKFILL against the real broker: one simulated day of history at TARGET_EPS=10, made as fast as Kafka takes it,
holds 0.9 x 86,400 x 10 events within 1%, its hourly counts follow the diurnal curve, and the truth topic's counts
of those simulated minutes equal a recount of the topics read to their high watermarks. With the agents on, what
they derive from a backfill is stamped on the simulated clock, never before its order, and their truth holds."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.serialization import MessageField, SerializationContext
from prometheus_client.parser import text_string_to_metric_families

from agents.intake import millis
from app.generation.rate import diurnal_factor
from app.truth import header, minute_of
from app.wire.headers import BAD_RECORD_HEADER, SHARD_HEADER
from tests.support import (
    KAFKA_BOOTSTRAP,
    Worker,
    http_get,
    registry_client,
    run_worker,
    topic_deserializer,
    unique_topics,
    wait_for,
)
from tests.truth_support import as_truth, count_derived, latest_truth, read_all

pytestmark = pytest.mark.integration

START = "2026-11-29T00:00:00Z"
START_MS = 1_795_910_400_000
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
TARGET_EPS = 10


def minute_counts(topics: list[str]) -> Counter[tuple[int, int]]:
    """Records per (shard header, minute of record timestamp) of ``topics``, read to their high watermarks."""
    consumer = Consumer(
        {"bootstrap.servers": KAFKA_BOOTSTRAP, "group.id": f"backfill-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    counts: Counter[tuple[int, int]] = Counter()
    try:
        for topic in topics:
            for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                if high <= low:
                    continue
                consumer.assign([TopicPartition(topic, partition, low)])
                got, deadline = 0, time.monotonic() + 120
                while got < high - low:
                    assert time.monotonic() < deadline, f"{topic}[{partition}]: read {got} of {high - low}"
                    for message in consumer.consume(5000, timeout=1.0):
                        assert message.error() is None, message.error()
                        if message.offset() < high:
                            shard = header(message.headers(), SHARD_HEADER)
                            counts[int(shard or -1), minute_of(message.timestamp()[1])] += 1
                            got += 1
    finally:
        consumer.close()
    return counts


def wait_caught_up(worker: Worker, orders_topic: str | None = None, most_lag: float = 0, timeout: float = 600) -> None:
    """Until the backfill is over and the clock a minute past the start (every minute of the history is over and
    its truth published); with ``orders_topic``, also until the agents' lag on it is at most ``most_lag``."""

    def caught_up() -> bool:
        assert worker.process.poll() is None, worker.log()[-4000:]
        try:
            status, stats = http_get(worker.url + "/stats/?local")
            lag = None if orders_topic is None else consumer_lag(worker.url, orders_topic)
        except OSError:  # not listening yet
            return False
        live = status == 200 and not stats["backfilling"] and stats["simulated_time"] >= START_MS + 70_000
        return live and (orders_topic is None or (lag is not None and lag <= most_lag))

    agents = " and the agents to decide its orders" if orders_topic else ""
    wait_for(caught_up, "the backfill to catch up" + agents, timeout=timeout)


def expected_events(from_ms: int, to_ms: int) -> float:
    """TARGET_EPS x the diurnal factor (UTC) integrated over [from_ms, to_ms), one-second midpoint steps."""
    return sum(
        TARGET_EPS * diurnal_factor(((second * 1000 + 500) % DAY_MS) / HOUR_MS)
        for second in range(from_ms // 1000, to_ms // 1000)
    )


def test_a_backfilled_day_holds_its_events_on_the_diurnal_curve_and_its_truth(tmp_path: Path) -> None:
    topics = unique_topics("backfill")
    settings = {
        **topics,
        "TARGET_EPS": str(TARGET_EPS),
        "START_TIME": START,
        "BACKFILL": "1d",
        "AGENTS_ENABLED": "false",
    }
    with run_worker(tmp_path, settings) as worker:
        wait_caught_up(worker)
    generated = [topics[name] for name in ("TOPIC_ORDERS", "TOPIC_CUSTOMER_INTERACTIONS", "TOPIC_INVENTORY_CHANGES")]
    counts = minute_counts(generated)
    assert min(minute for _, minute in counts) >= START_MS - DAY_MS  # nothing before the backfill's start

    history = {key: count for key, count in counts.items() if key[1] < START_MS}
    total = sum(history.values())
    assert abs(total - 777_600) <= 0.01 * 777_600, total  # 0.9 x 86,400 x 10
    per_hour: Counter[int] = Counter()
    for (_, minute), count in history.items():
        per_hour[(minute - (START_MS - DAY_MS)) // HOUR_MS] += count
    for hour in range(24):
        begin = START_MS - DAY_MS + hour * HOUR_MS
        expected = expected_events(begin, begin + HOUR_MS)
        assert abs(per_hour[hour] - expected) <= 0.01 * expected, (hour, per_hour[hour], expected)
    assert per_hour[16] > 3 * per_hour[4]  # the peak at 16:00 (1.4) and the trough at 04:00 (0.4)

    truth = latest_truth(topics["TOPIC_TRUTH"])
    told = Counter()
    for (who, minute), value in truth.items():
        if who.lstrip("-").isdigit() and minute < START_MS:
            told[int(who), minute] = sum(value["records"].values())
    assert told == Counter(history)


def decoded(topic: str) -> list[tuple[str, int, dict]]:
    """(key, record timestamp, value with epoch-ms times) of every good record of ``topic`` (bad ones left out), read
    to the high watermarks."""
    deserializer = topic_deserializer(registry_client())
    found = []
    for message in read_all(topic):
        if header(message.headers(), BAD_RECORD_HEADER) is None:
            value = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
            found.append(((message.key() or b"").decode(), message.timestamp()[1], millis(value)))
    return found


def consumer_lag(worker_url: str, topic: str) -> float | None:
    """The agents' lag on ``topic`` (input events not yet decided) as GET /metrics exports it."""
    with urllib.request.urlopen(worker_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "retail_datagen_consumer_lag_records":
            for sample in family.samples:
                if sample.labels.get("topic") == topic:
                    return sample.value
    return None


def test_the_agents_stamp_a_backfill_on_the_simulated_clock_and_tell_its_truth(tmp_path: Path) -> None:
    topics = unique_topics("backfill-agents")
    settings = {
        **topics,
        "TARGET_EPS": "20",
        "START_TIME": START,
        "BACKFILL": "1h",
        "CANON_INVENTORY": "kafka",
        "P_DUPLICATE": "0.01",
    }
    with run_worker(tmp_path, settings) as worker:
        wait_caught_up(worker, topics["TOPIC_ORDERS"], most_lag=100)
    ordered = {key: stamp for key, stamp, _ in decoded(topics["TOPIC_ORDERS"])}
    assert min(ordered.values()) >= START_MS - HOUR_MS
    payments, shipments = decoded(topics["TOPIC_PAYMENTS"]), decoded(topics["TOPIC_SHIPMENTS"])
    assert len(payments) > 1_000
    assert len(shipments) > 500
    for key, stamp, value in payments + shipments:
        assert key in ordered, f"a derived record of order {key}, which is not on the orders topic"
        assert stamp >= ordered[key], (key, stamp, ordered[key])  # never stamped before its order
        assert value["event_time"] <= stamp, (key, value, stamp)  # nor its event time after its timestamp
        # On the simulated clock (two days behind the wall clock), with at most two minutes of handling ahead.
        assert stamp <= START_MS + 10 * 60_000, (key, stamp)
    changes = decoded(topics["TOPIC_INVENTORY_CHANGES"])
    derived_changes = [(stamp, value) for _, stamp, value in changes if value["change_type"] == "SALE"]
    assert derived_changes
    for stamp, value in derived_changes:
        assert value["event_time"] <= stamp <= START_MS + 10 * 60_000
        assert value["source_id"] in ordered

    truth = latest_truth(topics["TOPIC_TRUTH"])
    derived = count_derived([topics["TOPIC_PAYMENTS"], topics["TOPIC_SHIPMENTS"], topics["TOPIC_INVENTORY_CHANGES"]])
    told = {key: as_truth(value) for key, value in truth.items() if ":" in key[0]}
    assert set(told) == set(derived), sorted(set(told) ^ set(derived))
    differing = {key: (told[key], derived[key]) for key in told if told[key] != derived[key]}
    assert not differing, differing
    assert min(minute for _, minute in told) >= START_MS - HOUR_MS


def test_stock_stays_within_bounds_over_a_simulated_week(tmp_path: Path) -> None:
    """A week of history with real lead times (LEAD_TIME_SCALE=1): the background restocks replace what ships, the
    stock agent reorders what runs low, so the total on hand ends every simulated day within half and one and a half
    times the opening stock, and no (product, warehouse) ever goes below zero."""
    topics = unique_topics("backfill-week")
    settings = {
        **topics,
        "TARGET_EPS": "0.25",
        "START_TIME": START,
        "BACKFILL": "7d",
        "LEAD_TIME_SCALE": "1",
        "CANON_INVENTORY": "kafka",
        "N_PRODUCTS": "100",
        "N_WAREHOUSES": "3",
        "RANDOM_SEED": "17",
    }
    with run_worker(tmp_path, settings) as worker:
        wait_caught_up(worker, topics["TOPIC_ORDERS"], timeout=900)
    changes = [(stamp, value) for _, stamp, value in decoded(topics["TOPIC_INVENTORY_CHANGES"])]
    changes.sort(key=lambda change: change[0])
    opening = sum(value["delta"] for _, value in changes if value["change_id"].startswith("opening-"))
    assert opening > 0
    kinds = Counter(value["change_type"] for _, value in changes if not value["change_id"].startswith("opening-"))
    assert kinds["SALE"] > 10_000
    assert kinds["RESTOCK"] > 1_000
    held: Counter[tuple[int, int]] = Counter()
    totals: dict[int, int] = {}
    for stamp, value in changes:
        place = (value["product_id"], value["warehouse_id"])
        held[place] += value["delta"]
        assert held[place] >= 0, (place, stamp, value)
        totals[(stamp - (START_MS - 7 * DAY_MS)) // DAY_MS] = sum(held.values())
    days = [totals[day] for day in range(7)]
    assert all(0.5 * opening <= total <= 1.5 * opening for total in days), (opening, days)
