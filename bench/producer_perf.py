"""Kafka's own producer ceiling (a): ``org.apache.kafka.tools.ProducerPerformance`` at our mean record size.

The tool comes from the kafka-tools jar the stack resolves (classpath in ``.stack/kafka.classpath``, written by
``stack/stack.sh``) and runs on the ``java`` on the PATH, as the broker does. It writes to a topic of its own made
like ours (TOPIC_PARTITIONS partitions, TOPIC_REPLICATION_FACTOR replicas) with our producer's settings
(``app/producer.py``): ``acks=all`` and ``enable.idempotence=true``, ``linger.ms=20``, no compression, and
``batch.size`` = what librdkafka's ``batch.num.messages=10000`` allows: 10,000 records of our size, capped at
librdkafka's default ``batch.size`` of 1,000,000 bytes. ``--throughput -1`` (no throttle), null keys.

Record size: the mean of key bytes + value bytes of the records the generation ceiling (b) wrote, read back
from its five topics (up to ``SAMPLE_PER_TOPIC`` records each, weighted by each topic's record count), so the
Java producer moves the same payload per record as ours (headers, on 0.1% of records, are left out).

A short calibration run measures the rate, then the measured run is sized to last about ``seconds`` seconds
with its first 10% as warmup (``--warmup-records``; sized again once if it lasted under half of that); the
figure is the steady-state line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

from bench.worker import KAFKA_BOOTSTRAP, ROOT, admin, delete_kafka_state

CLASSPATH_FILE = ROOT / ".stack" / "kafka.classpath"
SAMPLE_PER_TOPIC = 5_000
LIBRDKAFKA_BATCH_BYTES = 1_000_000
BATCH_RECORDS = 10_000
CALIBRATION_RECORDS = 200_000
SUMMARY = re.compile(r"^(\d+) (steady state )?records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\)")


def classpath() -> str:
    """Kafka's runtime classpath as the stack resolved it."""
    if not CLASSPATH_FILE.is_file():
        msg = f"{CLASSPATH_FILE} is missing: run `bash stack/stack.sh up` first"
        raise SystemExit(msg)
    return CLASSPATH_FILE.read_text().strip()


def java() -> str:
    """The java the stack runs Kafka on (the one on the PATH)."""
    found = shutil.which("java")
    if found is None:
        raise SystemExit("java not found on PATH")
    return found


def producer_properties(record_bytes: int) -> dict[str, str]:
    """Java producer settings equivalent to ``app/producer.py``."""
    return {
        "acks": "all",
        "enable.idempotence": "true",
        "linger.ms": "20",
        "batch.size": str(min(BATCH_RECORDS * record_bytes, LIBRDKAFKA_BATCH_BYTES)),
        "compression.type": "none",
    }


def _topic_counts(consumer: Consumer, topic: str) -> tuple[list[TopicPartition], int]:
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    assigned, total = [], 0
    for partition in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high > low:
            assigned.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
            total += high - low
    return assigned, total


def _sample_mean(consumer: Consumer, partitions: list[TopicPartition], limit: int) -> float:
    consumer.assign(partitions)
    sizes: list[int] = []
    idle = 0
    while len(sizes) < limit and idle < 3:
        batch = consumer.consume(num_messages=min(1000, limit - len(sizes)), timeout=1.0)
        idle = 0 if batch else idle + 1
        sizes += [len(m.key() or b"") + len(m.value() or b"") for m in batch if m.error() is None]
    consumer.unassign()
    return sum(sizes) / len(sizes) if sizes else 0.0


def mean_record_bytes(topics: list[str]) -> int:
    """Mean key + value bytes per record over ``topics``, each topic weighted by its record count."""
    consumer = Consumer({
        "bootstrap.servers": KAFKA_BOOTSTRAP,
        "group.id": f"bench-size-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
    })
    try:
        weighted, records = 0.0, 0
        for topic in topics:
            partitions, count = _topic_counts(consumer, topic)
            if count:
                weighted += _sample_mean(consumer, partitions, SAMPLE_PER_TOPIC) * count
                records += count
    finally:
        consumer.close()
    if not records:
        msg = f"no records to size in {', '.join(topics)}"
        raise SystemExit(msg)
    return round(weighted / records)


def run_tool(topic: str, records: int, record_bytes: int, warmup: int = 0) -> dict[str, float]:
    """One ProducerPerformance run; records/s and MB/s of its steady state (or of the whole run without warmup)."""
    command = [
        java(), "-Xmx512m", "-cp", classpath(), "org.apache.kafka.tools.ProducerPerformance",
        "--bootstrap-server", KAFKA_BOOTSTRAP, "--topic", topic, "--num-records", str(records),
        "--record-size", str(record_bytes), "--throughput", "-1", "--warmup-records", str(warmup),
        "--reporting-interval", "60000",
        "--command-property", *(f"{key}={value}" for key, value in producer_properties(record_bytes).items()),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    summaries = [match for line in done.stdout.splitlines() if (match := SUMMARY.match(line))]
    if done.returncode != 0 or not summaries:
        msg = f"ProducerPerformance failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        raise SystemExit(msg)
    wanted = [m for m in summaries if m.group(2)] if warmup else summaries
    last = (wanted or summaries)[-1]
    records, rate = int(last.group(1)), float(last.group(3))
    return {"records": records, "records_per_s": rate, "mb_per_s": float(last.group(4)), "seconds": records / rate}


def kafka_ceiling(record_bytes: int, seconds: float, partitions: int, replicas: int) -> dict[str, float]:
    """Records/s and MB/s Kafka's own producer reaches at ``record_bytes`` for about ``seconds`` seconds."""
    topic = f"bench-perf-{uuid.uuid4().hex[:8]}"
    client = admin()
    client.create_topics([NewTopic(topic, partitions, replicas)])[topic].result()
    try:
        row = run_tool(topic, CALIBRATION_RECORDS, record_bytes)
        for _ in range(2):  # a calibration slowed by the JVM's start can size a run far too short: resize once
            records = max(CALIBRATION_RECORDS, int(row["records_per_s"] * seconds))
            row = run_tool(topic, records, record_bytes, warmup=records // 10)
            if row["seconds"] >= seconds / 2:
                break
    finally:
        delete_kafka_state(topic)
    return {
        **row,
        "record_size": record_bytes,
        "partitions": partitions,
        "replicas": replicas,
        "properties": producer_properties(record_bytes),  # type: ignore[dict-item]
    }


def tool_versions() -> dict[str, str]:
    """Versions of the Kafka jars on the classpath (kafka_2.13 is the broker's, kafka-tools the tool's) and java."""
    jars = {Path(jar).name for jar in classpath().split(":")}
    versions = {}
    for name, pattern in (("kafka_broker", r"kafka_2\.13-(\d.*)\.jar"), ("kafka_tools", r"kafka-tools-(\d.*)\.jar")):
        found = [m.group(1) for jar in jars if (m := re.fullmatch(pattern, jar))]
        versions[name] = found[0] if found else "unknown"
    done = subprocess.run([java(), "-version"], capture_output=True, text=True, check=False)
    versions["java"] = (done.stderr.splitlines() or ["unknown"])[0]
    return versions
