"""A deployment under fault: real workers of one APP_ID on the local stack, which the suite can kill and restart,
and the stack's own services, which it stops, kills and wipes with stack/stack.sh.

Every deployment has its own topics, consumer group, Postgres database and data directories, removed afterwards.
Once its faults are over, :meth:`Deployment.settle` stops the workers, lets one worker without generation decide
everything left, and reads every topic to its high watermarks and the stock from each place that holds it.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from app.settings import Settings, load_settings
from app.verify.checks import compare_truth
from app.verify.truth import count_generated, read_truth
from app.wire.roles import DEAD_LETTER, INVENTORY_CHANGES, ORDERS, PAYMENTS, REQUESTS, SHIPMENTS, requests_topic
from db.throwaway import create_database, drop_database, dsn_for
from faults.checks import Verdict, judge
from tests.harness import ROOT, Worker, free_port, http_get, start_worker
from tests.stock_support import changelog_values, high_watermarks, listed_on_hand, postgres_on_hand, quiet
from tests.support import KAFKA_BOOTSTRAP, PG_DSN, read_back, unique_topics

STACK = ROOT / "stack" / "stack.sh"
#: How long a worker gets to start generating, or to recover from a fault (a broker restart included).
START_TIMEOUT = 240.0


def stack(*args: str) -> str:
    """Run ``stack/stack.sh`` with ``args``; its output. Raises when it fails."""
    done = subprocess.run(["bash", str(STACK), *args], capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        msg = f"stack.sh {' '.join(args)} failed: {done.stdout}{done.stderr}"
        raise RuntimeError(msg)
    return done.stdout


@dataclass
class Member:
    """One worker of the deployment: a process started and restarted on the same data directory, port and log."""

    name: str
    data_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    #: The harness's worker of the latest start; None before the first.
    _worker: Worker | None = field(default=None, init=False)

    def start(self, settings: Mapping[str, str]) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {time.strftime('%H:%M:%S')} =====\n".encode())
        self._worker = start_worker(settings, self.log_path, self.data_dir, port=self.port, append=True)

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return None if self._worker is None else self._worker.process

    @property
    def worker(self) -> Worker:
        """The running worker as the tests' helpers take it."""
        assert self._worker is not None
        return self._worker

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self._worker is not None and self._worker.running()

    def kill(self) -> None:
        """SIGKILL, and wait for the process to be gone."""
        if self._worker is not None:
            self._worker.kill()

    def terminate(self, timeout: float = 60.0) -> float:
        """SIGTERM; the seconds the process took to exit (it is killed after ``timeout``)."""
        return 0.0 if self._worker is None else self._worker.stop(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def healthy(self) -> bool:
        try:
            return http_get(self.url + "/health", timeout=5)[0] == 200
        except (OSError, ValueError):
            return False

    def stats(self) -> dict:
        return http_get(self.url + "/stats/?local", timeout=5)[1]


@dataclass
class Outcome:
    """What a deployment holds once settled, and the verdict on it."""

    records: dict[str, list]
    stats: dict
    verdict: Verdict


class Deployment:
    """``workers`` workers of one APP_ID at ``rate`` events/s together, in inventory ``mode``, the mirror on."""

    def __init__(self, base: Path, mode: str, rate: float, workers: int = 2, extra: Mapping[str, str] | None = None):
        self.base = base
        self.mode = mode
        self.rate = rate
        self.database = create_database(PG_DSN, "faults")
        self.dsn = dsn_for(PG_DSN, self.database)
        self.topics = unique_topics("flt")
        self.app_id = self.topics["APP_ID"]
        self.settings: dict[str, str] = {
            **self.topics,
            "PG_DSN": self.dsn,
            "N_USERS": "2000",
            "N_PRODUCTS": "200",
            "N_WAREHOUSES": "3",
            "N_SUPPLIERS": "10",
            "CANON_INVENTORY": mode,
            "MIRROR_INVENTORY_TO_DB": str(mode == "kafka").lower(),
            "TARGET_EPS": str(rate),
            "DIURNAL_ENABLED": "false",
            "P_BAD_RECORD": "0.01",
            "LEAD_TIME_SCALE": str(1 / 864000),  # a supplier's day lasts 0.1 s: restocks arrive while settling
            "BACKORDER_TIMEOUT_DAYS": "900",  # 90 s: backorders ship when restocks arrive, none is cancelled
            "GENERATION_SETTLE_SECONDS": "1",
            **(extra or {}),
        }
        self.roles = {
            ORDERS: self.topics["TOPIC_ORDERS"],
            PAYMENTS: self.topics["TOPIC_PAYMENTS"],
            SHIPMENTS: self.topics["TOPIC_SHIPMENTS"],
            INVENTORY_CHANGES: self.topics["TOPIC_INVENTORY_CHANGES"],
            DEAD_LETTER: self.topics["TOPIC_DEAD_LETTER"],
            REQUESTS: requests_topic(self.app_id),
        }
        base.mkdir(parents=True, exist_ok=True)
        self.members = [Member(f"w{n}", base / f"w{n}-data", base / f"w{n}.log") for n in range(1, workers + 1)]

    # ----- running

    def start(self) -> None:
        for member in self.members:
            member.start(self.settings)

    def wait_generating(self, timeout: float = START_TIMEOUT) -> None:
        """Until every worker answers and, together, they generate every shard."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for member in self.members:
                if member.process is not None and member.process.poll() is not None:
                    msg = f"{member.name} exited with {member.process.returncode}: {member.log()[-3000:]}"
                    raise RuntimeError(msg)
            if self._generating_all():
                return
            time.sleep(0.5)
        msg = f"the workers never generated every shard; {self.members[0].log()[-3000:]}"
        raise RuntimeError(msg)

    def _generating_all(self) -> bool:
        held: set[int] = set()
        for member in self.members:
            try:
                stats = member.stats()
            except (OSError, ValueError):
                return False
            if stats.get("state") != "running":
                return False
            held |= set(stats.get("shards") or [])
        return len(held) == int(self.settings.get("GENERATION_SHARDS", "12"))

    def orders_made(self) -> int:
        return sum(high_watermarks(self.roles[ORDERS]).values())

    def in_flight(self) -> int:
        """Orders on the topic that the agents' group has not committed yet: events not yet decided."""
        return self.uncommitted(self.roles[ORDERS])

    def uncommitted(self, topic: str) -> int:
        """Records of ``topic`` past the agents' group's committed offsets."""
        ends = high_watermarks(topic)
        consumer = Consumer({"bootstrap.servers": KAFKA_BOOTSTRAP, "group.id": self.app_id})
        try:
            committed = consumer.committed([TopicPartition(topic, p) for p in ends], timeout=10)
        finally:
            consumer.close()
        done = {tp.partition: max(tp.offset, 0) for tp in committed}
        return sum(end - done.get(partition, 0) for partition, end in ends.items())

    def wait_recovered(self, since: float, timeout: float = START_TIMEOUT) -> float:
        """Seconds from ``since`` (a monotonic time) until every worker is healthy again, orders are being made and
        fewer than 5 s of them wait to be decided."""
        deadline = time.monotonic() + timeout
        made = self._safely(self.orders_made, 0)
        while time.monotonic() < deadline:
            for member in self.members:
                if member.process is not None and member.process.poll() is not None:
                    msg = f"{member.name} exited with {member.process.returncode}: {member.log()[-3000:]}"
                    raise RuntimeError(msg)
            now_made = self._safely(self.orders_made, made)
            if (
                now_made > made
                and all(member.healthy() for member in self.members)
                and self._safely(self.in_flight, 10**9) < 5 * self.rate * self._order_share()
            ):
                return time.monotonic() - since
            made = max(made, now_made)
            time.sleep(0.5)
        msg = f"not recovered within {timeout:.0f} s; {self.members[0].log()[-3000:]}"
        raise RuntimeError(msg)

    def _order_share(self) -> float:
        settings = load_settings(self.settings)
        weights = settings.weight_orders + settings.weight_interactions + settings.weight_inventory_chg
        return settings.weight_orders / weights

    @staticmethod
    def _safely(step, fallback):  # type: ignore[no-untyped-def]
        try:
            return step()
        except (KafkaException, KeyError, OSError, RuntimeError):
            return fallback

    # ----- settling and judging

    def settle(self) -> Outcome:
        """Stop the workers, let one without generation decide everything left, then read and judge it all."""
        for member in self.members:
            member.terminate()
        last = self.members[0]
        last.start({**self.settings, "GENERATION_ENABLED": "false"})
        last.worker.wait_until("/health", 200, timeout=START_TIMEOUT)
        last.worker.wait_until("/inventory/", 200, timeout=START_TIMEOUT)
        stats, items = quiet(last.worker, timeout=300)
        last.terminate()
        # Decided and committed: a group offset short of the end would have the records after it decided again.
        behind = {role: n for role in (ORDERS, REQUESTS) if (n := self.uncommitted(self.roles[role]))}
        expected = sum(sum(high_watermarks(topic).values()) for topic in self.roles.values())
        everything = read_back(list(self.roles.values()), expected, timeout=300)
        if len(everything) != expected:
            msg = f"read {len(everything)} records of {expected}"
            raise RuntimeError(msg)
        records = {role: [r for r in everything if r.topic == topic] for role, topic in self.roles.items()}
        stocks = {"postgres": postgres_on_hand(self.dsn), "listing": listed_on_hand(items)}
        if self.mode == "kafka":
            stocks["changelog"] = {
                (int(key), int(w)): row[0]
                for key, value in changelog_values(self.app_id, "stock-ledger").items()
                for w, row in value["w"].items()  # type: ignore[index]
            }
        settings = self.parsed()
        verdict = judge(settings, records, stocks)
        verdict.note("records past the group's committed offsets once settled", sum(behind.values()), behind)
        # The truth topic: every (shard, minute) published equals what the topics hold, whatever the faults did.
        wrong, _ = compare_truth(read_truth(settings, 60), count_generated(settings))
        verdict.note("truth records that differ from the topics", wrong.total, wrong.summary())
        return Outcome(records, stats, verdict)

    def parsed(self) -> Settings:
        return load_settings(self.settings)

    def close(self) -> None:
        for member in self.members:
            member.kill()
        if os.environ.get("FAULTS_KEEP"):
            print(f"FAULTS_KEEP: kept app {self.app_id}, topics {self.roles}, database {self.database}", flush=True)
            return
        with suppress(Exception):
            delete_topics(self.topics["APP_ID"].removeprefix("datagen-"), self.app_id)
        drop_database(PG_DSN, self.database)


def delete_topics(suffix: str, group: str) -> None:
    """Delete every topic whose name contains ``suffix`` and the consumer group ``group``."""
    admin = AdminClient({"bootstrap.servers": KAFKA_BOOTSTRAP, "log_level": 3})
    names = [name for name in admin.list_topics(timeout=10).topics if suffix in name]
    futures = list(admin.delete_topics(names, operation_timeout=30).values()) if names else []
    futures += list(admin.delete_consumer_groups([group], request_timeout=10).values())
    for future in futures:
        with suppress(KafkaException):
            future.result()


@contextmanager
def deployment(base: Path, mode: str, rate: float, **kwargs: object) -> Iterator[Deployment]:
    """A :class:`Deployment`, closed (workers killed, topics, group and database removed) on exit."""
    made = Deployment(base / f"{mode}-{uuid.uuid4().hex[:6]}", mode, rate, **kwargs)  # type: ignore[arg-type]
    try:
        yield made
    finally:
        made.close()
