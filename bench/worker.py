"""A benchmark worker: a real ``faust -A app worker`` process with topics, group and data of its own.

Every benchmark step runs a fresh worker through :func:`bench_worker`: its own APP_ID (so its own consumer group
and changelog topics), its own six topics and DATA_DIR, a flat rate (DIURNAL_ENABLED=false) and MAX_EVENTS unset.
On exit the worker is stopped and every Kafka topic and the consumer group it used are deleted, so repeated runs do
not fill the broker's disk. CPU and memory are read from ``/proc``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

ROOT = Path(__file__).resolve().parent.parent
FAUST = str(Path(sys.executable).with_name("faust"))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KAFKA_BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
TOPIC_ROLES = ("ORDERS", "PAYMENTS", "SHIPMENTS", "INVENTORY_CHANGES", "CUSTOMER_INTERACTIONS", "DEAD_LETTER")
START_TIMEOUT = 180.0


@dataclass
class BenchWorker:
    """A running worker: its process, web port, APP_ID and topic names by role (lower case)."""

    process: subprocess.Popen[bytes]
    port: int
    app_id: str
    topics: dict[str, str]
    log_path: Path

    def stats(self) -> dict:
        """The worker's ``GET /stats/``."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats/", timeout=5) as response:
            return dict(json.loads(response.read()))

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the worker process has used."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_mb(self) -> float:
        """Resident memory (VmRSS) in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def wait_running(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until the generator reports ``running``; SystemExit naming the log if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None or time.monotonic() > deadline:
                msg = f"worker {self.app_id} did not start; see {self.log_path}"
                raise SystemExit(msg)
            with suppress(OSError, ValueError):
                if self.stats()["state"] == "running":
                    return
            time.sleep(0.5)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_environment(tag: str, target: float, data_dir: Path, port: int, overrides: Mapping[str, str]) -> dict:
    """The environment of a benchmark worker named ``bench-<tag>``."""
    env = {
        **os.environ,
        "TARGET_EPS": str(target),
        "DIURNAL_ENABLED": "false",
        "APP_ID": f"bench-{tag}",
        "WEB_PORT": str(port),
        "DATA_DIR": str(data_dir / tag),
        **{f"TOPIC_{role}": f"bench-{tag}.{role.lower()}" for role in TOPIC_ROLES},
        **overrides,
    }
    env.pop("MAX_EVENTS", None)
    return env


@contextmanager
def bench_worker(target: float, data_dir: Path, overrides: Mapping[str, str] | None = None) -> Iterator[BenchWorker]:
    """Start a worker at ``target`` events/s with ``overrides``; wait until it generates; clean up afterwards."""
    tag = uuid.uuid4().hex[:8]
    port = free_port()
    env = worker_environment(tag, target, data_dir, port, overrides or {})
    log_path = data_dir / f"worker-{tag}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [FAUST, "-A", "app", "worker", "-l", "warn"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    topics = {role.lower(): env[f"TOPIC_{role}"] for role in TOPIC_ROLES}
    worker = BenchWorker(process, port, env["APP_ID"], topics, log_path)
    try:
        worker.wait_running()
        yield worker
    finally:
        stop(process)
        delete_kafka_state(f"bench-{tag}", env["APP_ID"])


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
