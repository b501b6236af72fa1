"""BACKFILL against the real broker: one simulated day of history at TARGET_EPS=10, made as fast as Kafka takes it,
holds 0.9 x 86,400 x 10 events within 1%, its hourly counts follow the diurnal curve, and the truth topic's counts
of those simulated minutes equal a recount of the topics read to their high watermarks."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from app.generation.rate import diurnal_factor
from app.truth import SHARD_HEADER, header, minute_of
from tests.integration.test_truth import latest_truth
from tests.support import KAFKA_BOOTSTRAP, http_get, run_worker, unique_topics, wait_for

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

        def caught_up() -> bool:
            assert worker.process.poll() is None, worker.log()[-4000:]
            try:
                status, stats = http_get(worker.url + "/stats/?local")
            except OSError:  # not listening yet
                return False
            # Live, and a minute past the start: every minute of the history is over and its truth published.
            return status == 200 and not stats["backfilling"] and stats["simulated_time"] >= START_MS + 70_000

        wait_for(caught_up, "the backfill to catch up with the live clock", timeout=600)
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
