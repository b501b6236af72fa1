"""Benchmark workers: real ``faust -A app worker`` processes with topics, group and data of their own.

Every benchmark step runs fresh workers through :func:`bench_workers` (one: :func:`bench_worker`): one APP_ID per
step (so its own consumer group and changelog topics), its own seven topics (the truth topic too), a flat rate
(DIURNAL_ENABLED=false) and MAX_EVENTS unset. The workers start together, each with its own WEB_PORT and
DATA_DIR; between them they hold every generation shard (so together they emit TARGET_EPS) and share the group's
partitions. On exit the workers are stopped and every Kafka topic and the consumer group they used are deleted, so
repeated runs do not fill the broker's disk. CPU and memory are read from ``/proc``, the broker's and Postgres's too.

The workers are started and stopped by the real-worker harness the tests use (tests/harness.py), at log level warn.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from psycopg2 import sql
from psycopg2.extensions import parse_dsn

from app.wire.roles import ROLES
from db.throwaway import drop_database, dsn_for
from tests.harness import ROOT, Worker, start_worker, stop_all

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KAFKA_BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
PID_FILES = ROOT / ".stack" / "run"


@dataclass
class BenchWorker(Worker):
    """A running worker (the harness's :class:`Worker`: process, environment, web port, log) with its APP_ID and
    topic names by role (lower case)."""

    app_id: str
    topics: dict[str, str]

    def stats(self) -> dict:
        """The worker's ``GET /stats/``."""
        with urllib.request.urlopen(f"{self.url}/stats/", timeout=5) as response:
            return dict(json.loads(response.read()))

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the worker process has used."""
        return cpu_seconds(self.process.pid)

    def main_thread_cpu_seconds(self) -> float:
        """User + system CPU seconds of the worker's main thread, the one running the event loop (and the agents)."""
        return cpu_seconds(self.process.pid, self.process.pid)

    def rss_mb(self) -> float:
        """Resident memory (VmRSS) in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def wait_running(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the generator reports ``running``; SystemExit naming the log if it never does."""
        self._wait(lambda stats: stats["state"] == "running", timeout)

    def wait_group(self, workers: int, timeout: float = START_TIMEOUT) -> None:
        """Wait until ``workers`` workers of the group answer and between them generate every shard."""

        def whole(stats: dict) -> bool:
            group = stats.get("group") or {}
            members = [member for member in group.get("workers", []) if member["reachable"]]
            generating = sorted(shard for member in members for shard in member["generating"])
            assigned = sorted(shard for member in group.get("workers", []) for shard in member["shards"])
            return len(members) == workers and bool(generating) and generating == assigned

        self._wait(whole, timeout)

    def _wait(self, ready: Callable[[dict], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                msg = f"worker {self.app_id} (pid {self.process.pid}) did not start; see {self.log_path}"
                raise SystemExit(msg)
            with suppress(OSError, ValueError):
                if ready(self.stats()):
                    return
            time.sleep(0.5)


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU seconds process ``pid`` (or only its ``thread``) has used (0.0 once it is gone)."""
    path = Path(f"/proc/{pid}/stat") if thread is None else Path(f"/proc/{pid}/task/{thread}/stat")
    try:
        fields = path.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _pids() -> Iterator[int]:
    return (int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())


def broker_pid() -> int | None:
    """The Kafka broker's pid: the stack's pid file, else a java process running ``kafka.Kafka``; None if neither."""
    with suppress(OSError, ValueError):
        pid = int((PID_FILES / "kafka.pid").read_text().strip())
        if "kafka.Kafka" in _command_line(pid):
            return pid
    return next((pid for pid in _pids() if "java" in (line := _command_line(pid)) and " kafka.Kafka " in line), None)


def database_backends(dsn: str) -> list[int]:
    """Pids of the Postgres backends connected to the database of ``dsn`` (``postgres: user dbname ...``)."""
    marker = f" {parse_dsn(dsn)['dbname']} "
    return [pid for pid in _pids() if (line := _command_line(pid)).startswith("postgres: ") and marker in line]


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (every core: /proc/stat less idle and iowait)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS


def worker_settings(tag: str, target: float, overrides: Mapping[str, str]) -> dict[str, str | None]:
    """The settings of a benchmark worker of APP_ID ``bench-<tag>`` on top of ``os.environ`` (the harness adds
    WEB_PORT and DATA_DIR); MAX_EVENTS is unset (None), whatever the environment or ``overrides`` say."""
    return {
        "TARGET_EPS": str(target),
        "DIURNAL_ENABLED": "false",
        "APP_ID": f"bench-{tag}",
        **{f"TOPIC_{role.upper()}": f"bench-{tag}.{role}" for role in ROLES},
        **overrides,
        "MAX_EVENTS": None,
    }


def _launch(tag: str, member: str, target: float, data_dir: Path, overrides: Mapping[str, str]) -> BenchWorker:
    """A worker of ``bench-<tag>`` whose DATA_DIR is ``data_dir/<member>`` and log ``data_dir/worker-<member>.log``."""
    worker = start_worker(
        worker_settings(tag, target, overrides), data_dir / f"worker-{member}.log", data_dir / member, level="warn"
    )
    topics = {role: worker.env[f"TOPIC_{role.upper()}"] for role in ROLES}
    return BenchWorker(worker.process, worker.env, worker.port, worker.log_path, worker.env["APP_ID"], topics)


@contextmanager
def bench_workers(
    target: float, count: int, data_dir: Path, overrides: Mapping[str, str] | None = None
) -> Iterator[list[BenchWorker]]:
    """``count`` workers of one APP_ID at ``target`` events/s in all with ``overrides``; cleaned up afterwards.

    They start together and are waited for until all answer and, between them, generate every shard.
    """
    tag = uuid.uuid4().hex[:8]
    workers: list[BenchWorker] = []
    try:
        workers += [_launch(tag, f"{tag}-{n}", target, data_dir, overrides or {}) for n in range(1, count + 1)]
        for worker in workers:
            worker.wait_running()
        workers[0].wait_group(count)
        yield workers
    finally:
        stop_all(workers, STOP_TIMEOUT)
        delete_kafka_state(f"bench-{tag}", f"bench-{tag}")


@contextmanager
def bench_worker(target: float, data_dir: Path, overrides: Mapping[str, str] | None = None) -> Iterator[BenchWorker]:
    """One worker at ``target`` events/s with ``overrides``, waited for until it generates; cleaned up afterwards."""
    with bench_workers(target, 1, data_dir, overrides) as workers:
        yield workers[0]


@contextmanager
def database_copy(server: str, source: str, prefix: str) -> Iterator[str]:
    """A DSN to a new database ``<prefix>_<hex>`` copied from the database of ``source``, dropped on exit.

    Postgres copies a database only while nobody is connected to it: ``source`` is one no worker uses.
    ``server`` is a DSN of the same server (the configured PG_DSN), the connection that makes and drops the copy.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    statement = sql.SQL("create database {} template {}").format(
        sql.Identifier(name), sql.Identifier(parse_dsn(source)["dbname"])
    )
    with closing(psycopg2.connect(server, application_name="retail-datagen bench")) as conn:
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with conn.cursor() as cursor:
            cursor.execute(statement)
    try:
        yield dsn_for(server, name)
    finally:
        drop_database(server, name)


def delivered(topics: list[str]) -> int:
    """The records Kafka holds on ``topics``: the sum of their partitions' high watermarks."""
    consumer = Consumer({"bootstrap.servers": KAFKA_BOOTSTRAP, "group.id": f"bench-marks-{uuid.uuid4().hex}"})
    try:
        total = 0
        for topic in topics:
            for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                total += consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
        return total
    finally:
        consumer.close()


def admin() -> AdminClient:
    """An admin client of the stack's Kafka."""
    return AdminClient({"bootstrap.servers": KAFKA_BOOTSTRAP, "log_level": 3})  # errors only


def delete_kafka_state(prefix: str, group: str | None = None) -> None:
    """Delete every topic whose name starts with ``prefix`` (all of them ours) and the consumer group ``group``."""
    client = admin()
    names = [name for name in client.list_topics(timeout=10).topics if name.startswith(prefix)]
    futures = list(client.delete_topics(names, operation_timeout=30).values()) if names else []
    if group:
        futures += list(client.delete_consumer_groups([group], request_timeout=10).values())
    for future in futures:
        with suppress(KafkaException):
            future.result()
