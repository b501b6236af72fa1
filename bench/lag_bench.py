"""End to end (c) and memory (d): the highest rate at which the agents keep up, and the workers' resident memory.

    .venv/bin/python -m bench.lag_bench --mode kafka --workers 2 --targets 1000 3000 [--window 20]

(c) runs in each inventory mode (CANON_INVENTORY=kafka and =postgres), each on its own ladder of targets. Every
step runs ``workers`` fresh worker processes of one APP_ID (``bench.worker.bench_workers``), each generating its
generation shards (together the target) and running every agent, each with its own WEB_PORT and DATA_DIR, on a
fresh copy of the seeded database (the Postgres ledger's bookkeeping is tied to the offsets of the
step's own requests topic, and a kafka step must not start from stock a postgres step moved).

Lag counts input events not yet decided: the lag of the step's consumer group (its APP_ID) on the orders topic plus
its lag on ``<APP_ID>-stock-requests``, where the orders agent forwards every order (one record each), the generator
writes its background inventory changes (one record each) and the schedule timer writes the items that fell due (one
record each); every record of either topic is one event. No other topic counts (the tables' changelogs are not
consumed through the group). Lag is the sum over the two topics' partitions of high watermark - committed offset (a
partition with no commit yet counts whole: the topics are new and Faust starts them from the earliest offset), read
with confluent-kafka's AdminClient. An order forwarded before the orders agent's next commit counts on both topics
until that commit (at most one commit interval). ``python -m bench.lag_bench`` measures every target given unless
told ``--stop-at-miss``.

A step waits until every worker is a member of the group, then settles for at least ``least`` seconds, then until
the group has committed everything the two topics held at that moment (a fresh first worker sends the opening
stock, one RESTOCK request per product and warehouse), at most ``most`` seconds. Then the lag is sampled every
``SAMPLE_SECONDS`` over the window.

Flat lag. Faust commits every ``broker_commit_interval`` (2.8 s), so committed lag is a sawtooth: judged over the
whole window, never from one sample, and only at the samples taken just after a commit (the committed total grew
since the previous sample, at most ``SAMPLE_SECONDS`` earlier), where it is the agents' real backlog; with fewer
than 3 such points (the group hardly commits) every sample counts. The lag is flat when
  * slope: the least-squares slope of the total lag (both topics) over time is at most 1% of the target
    (events/s); the slope on each topic and the total's standard error (the window's noise: the batched agents
    and the commit interval make a sawtooth of about a second of events, so short windows give wide errors) are
    reported beside it, not judged, and
  * bound: the mean total lag over the second half of the window is at most 5 s worth of target events, or
    5,000 records at low targets (Faust's fetch buffers and the opening stock alone hold that many).
A step holds when its lag is flat and the generator achieved at least 97% of the target (a rate that was not
generated was not consumed either). The ladder stops at the first step that does not hold; (c) is the
highest target that held (0 when none did).

Over each window a step also records every worker's CPU (utime + stime from ``/proc/<pid>/stat``, in % of one
core; its main thread's apart, from ``/proc/<pid>/task/<pid>/stat``: the event loop that runs the agents, whose
100% is the ceiling of one worker) and VmRSS at its end, the broker's CPU (the java process running
``kafka.Kafka``), the CPU of the Postgres backends connected to the step's database, the whole machine's busy CPU
(``/proc/stat``: what everyone else on the machine used shows as the rest), the agents' counters summed over the
workers, and any error lines in the logs.

(d) at rest: one worker with every agent on (kafka mode) at TARGET_EPS=1, its VmRSS once settled the same way; (d)
at (c): the largest VmRSS of the workers at the end of the step that held.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from app.settings import load_settings
from app.wire.roles import ORDERS, REQUESTS, requests_topic
from bench.worker import (
    START_TIMEOUT,
    BenchWorker,
    admin,
    bench_worker,
    bench_workers,
    broker_pid,
    cpu_seconds,
    database_backends,
    database_copy,
    machine_busy_seconds,
)
from db.seed import seed_database
from db.throwaway import throwaway_database

SAMPLE_SECONDS = 0.25
SLOPE_SHARE = 0.01
BOUND_SECONDS = 5.0
BOUND_FLOOR = 5_000
MIN_ACHIEVED = 0.97
MODES = ("kafka", "postgres")
REST_TARGET = 1.0
#: Log lines that mean something went wrong in a worker, and how many of them a step keeps.
PROBLEMS = ("Traceback", "[ERROR]", "[CRITICAL]", "Error:", "Exception")
PROBLEM_LINES = 8


def agents_on(mode: str) -> dict[str, str]:
    """The environment of workers with every agent on, the canonical inventory in ``mode``."""
    return {"AGENTS_ENABLED": "true", "CANON_INVENTORY": mode}


@dataclass(frozen=True)
class Sample:
    """One look at a group: seconds into the window, lag per topic, total committed offset."""

    t: float
    lags: dict[str, int]
    committed: int

    @property
    def lag(self) -> int:
        """Lag summed over the topics."""
        return sum(self.lags.values())


@dataclass
class LagReader:
    """Committed lag of one consumer group over the partitions of some topics, by role (name: topic)."""

    group: str
    topics: dict[str, str]
    client: AdminClient = field(default_factory=admin)
    partitions: list[TopicPartition] = field(default_factory=list)

    def __post_init__(self) -> None:
        metadata = self.client.list_topics(timeout=10).topics
        missing = [topic for topic in self.topics.values() if topic not in metadata]
        if missing:
            msg = f"consumed topics missing: {', '.join(missing)}"
            raise SystemExit(msg)
        self.partitions = [
            TopicPartition(t, p) for t in self.topics.values() for p in sorted(metadata[t].partitions)
        ]

    def read(self) -> tuple[dict[str, int], int]:
        """Lag per role (high watermarks minus committed offsets) and the committed offsets summed."""
        request = [ConsumerGroupTopicPartitions(self.group, self.partitions)]
        committed_future = self.client.list_consumer_group_offsets(request, request_timeout=5)[self.group]
        highs = self.client.list_offsets({tp: OffsetSpec.latest() for tp in self.partitions}, request_timeout=5)
        committed = {(tp.topic, tp.partition): max(tp.offset, 0) for tp in committed_future.result().topic_partitions}
        role_of = {topic: role for role, topic in self.topics.items()}
        lags = dict.fromkeys(self.topics, 0)
        for tp, future in highs.items():
            position = committed.get((tp.topic, tp.partition), 0)
            lags[role_of[tp.topic]] += max(0, future.result().offset - position)
        return lags, sum(committed.values())

    def total(self) -> int:
        """Lag summed over the topics."""
        return sum(self.read()[0].values())


def consumed_topics(worker: BenchWorker) -> dict[str, str]:
    """The topics whose records are the input events the agents decide (see agents/fulfilment.py), by role."""
    return {ORDERS: worker.topics[ORDERS], REQUESTS: requests_topic(worker.app_id)}


def wait_members(group: str, count: int, timeout: float = START_TIMEOUT, client: AdminClient | None = None) -> None:
    """Wait until ``count`` members are in ``group`` and it is stable; SystemExit if that takes over ``timeout`` s."""
    client = client or admin()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = client.describe_consumer_groups([group], request_timeout=5)[group].result()
        except KafkaException:
            found = None
        if found is not None and len(found.members) >= count and found.state == ConsumerGroupState.STABLE:
            return
        time.sleep(0.5)
    msg = f"group {group}: {count} workers did not join within {timeout:.0f} s"
    raise SystemExit(msg)


def slope(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of lag over time, in events per second."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (y - mean_y) for t, y in points) / spread if spread else 0.0


def slope_error(points: list[tuple[float, int]]) -> float:
    """Standard error of the least-squares slope (events per second): how far the window's noise moves it."""
    n = len(points)
    if n < 3:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if not spread:
        return 0.0
    fitted = slope(points)
    intercept = sum(y for _, y in points) / n - fitted * mean_t
    residuals = sum((y - intercept - fitted * t) ** 2 for t, y in points)
    return float((residuals / (n - 2) / spread) ** 0.5)


def commit_points(samples: list[Sample]) -> list[Sample]:
    """The samples taken just after a commit (the committed total grew), or all of them when under 3 were."""
    points = [now for before, now in pairwise(samples) if now.committed > before.committed]
    return points if len(points) >= 3 else samples


def bound(target: float) -> float:
    """The most lag a flat window may end with: ``BOUND_SECONDS`` of target events, at least ``BOUND_FLOOR``."""
    return max(BOUND_SECONDS * target, BOUND_FLOOR)


def verdict(samples: list[Sample], target: float, achieved: float) -> dict:
    """Whether the lag samples of a window are flat at ``target`` and the step holds (see the module docstring)."""
    points = commit_points(samples)
    half = points[0].t + (points[-1].t - points[0].t) / 2
    tail = [point.lag for point in points if point.t >= half]
    totals = [(p.t, p.lag) for p in points]
    total_slope = slope(totals)
    slopes = {role: round(slope([(p.t, p.lags[role]) for p in points]), 2) for role in points[0].lags}
    final_lag = sum(tail) / len(tail)
    flat = total_slope <= SLOPE_SHARE * target and final_lag <= bound(target)
    return {
        "slope_per_s": round(total_slope, 2),
        "slope_error_per_s": round(slope_error(totals), 2),
        "slopes_per_s": slopes,
        "final_lag": round(final_lag),
        "final_lags": {role: round(sum(p.lags[role] for p in points if p.t >= half) / len(tail)) for role in slopes},
        "max_lag": max(sample.lag for sample in samples),
        "commit_points": len(points),
        "points": [[round(p.t, 2), *(p.lags[role] for role in slopes)] for p in points],
        "flat": flat,
        "held": flat and achieved >= MIN_ACHIEVED * target,
    }


@dataclass(frozen=True)
class Usage:
    """CPU seconds used so far: by each worker, the broker, the step database's Postgres backends, the machine."""

    at: float
    workers: list[float]
    main_threads: list[float]
    broker: float
    backends: dict[int, float]
    machine: float

    @classmethod
    def now(cls, workers: list[BenchWorker], broker: int | None, dsn: str) -> Usage:
        """A reading of every counter."""
        return cls(
            time.monotonic(),
            [worker.cpu_seconds() for worker in workers],
            [worker.main_thread_cpu_seconds() for worker in workers],
            cpu_seconds(broker) if broker else 0.0,
            {pid: cpu_seconds(pid) for pid in database_backends(dsn)},
            machine_busy_seconds(),
        )

    def since(self, start: Usage) -> dict:
        """CPU from ``start`` to this reading in % of one core (the machine's: of all its cores together)."""
        seconds = self.at - start.at

        def pct(used: float) -> float:
            return round(100 * used / seconds, 1)

        backends = sum(used - start.backends.get(pid, 0.0) for pid, used in self.backends.items())
        return {
            "window_s": round(seconds, 2),
            "workers_pct": [pct(end - begin) for begin, end in zip(start.workers, self.workers, strict=True)],
            "main_threads_pct": [
                pct(end - begin) for begin, end in zip(start.main_threads, self.main_threads, strict=True)
            ],
            "broker_pct": pct(self.broker - start.broker),
            "postgres_backends_pct": pct(backends),
            "machine_pct": pct(self.machine - start.machine),
            "machine_cores": os.cpu_count(),
        }


def agent_counts(workers: list[BenchWorker]) -> Counter[str]:
    """The agents' counters (``/stats/`` "agents"), summed over the workers."""
    total: Counter[str] = Counter()
    for worker in workers:
        total.update(worker.stats().get("agents", {}))
    return total


def emitted_by(workers: list[BenchWorker]) -> int:
    """Events the workers' generators have emitted, all together."""
    return sum(int(worker.stats()["emitted"]) for worker in workers)


def sample_window(workers: list[BenchWorker], window: float, dsn: str) -> tuple[list[Sample], float, dict]:
    """Lag samples over ``window`` s, the generator's achieved rate and what the window used (CPU, decisions)."""
    first = workers[0]
    reader = LagReader(first.app_id, consumed_topics(first))
    broker = broker_pid()
    counts_before = agent_counts(workers)
    usage_before, emitted_before = Usage.now(workers, broker, dsn), emitted_by(workers)
    samples: list[Sample] = []
    while (now := time.monotonic()) < usage_before.at + window:
        samples.append(Sample(now - usage_before.at, *reader.read()))
        time.sleep(max(0.0, SAMPLE_SECONDS - (time.monotonic() - now)))
    usage, emitted = Usage.now(workers, broker, dsn), emitted_by(workers)
    seconds = usage.at - usage_before.at
    counts = agent_counts(workers)
    counts.subtract(counts_before)
    used = {
        "cpu": {**usage.since(usage_before), "broker_found": broker is not None},
        "agents_per_s": {name: round(count / seconds, 1) for name, count in sorted(counts.items()) if count},
    }
    return samples, (emitted - emitted_before) / seconds, used


def settle(reader: LagReader, least: float, most: float) -> float:
    """Wait ``least`` s, then until the group has consumed all the topics held then (the opening stock among them).

    Gives up after ``most`` s (an overloaded worker never catches up; its window then shows it); the seconds waited.
    """
    started = time.monotonic()
    time.sleep(least)
    lags, committed = reader.read()
    backlog_end = committed + sum(lags.values())
    while time.monotonic() - started < most and reader.read()[1] < backlog_end:
        time.sleep(0.5)
    return time.monotonic() - started


def log_problems(workers: list[BenchWorker]) -> list[str]:
    """The first ``PROBLEM_LINES`` lines of the workers' logs that name an error, each with its log's name."""
    found: list[str] = []
    for worker in workers:
        lines = worker.log_path.read_text(errors="replace").splitlines() if worker.log_path.exists() else []
        found += [f"{worker.log_path.name}: {line.strip()}" for line in lines if any(p in line for p in PROBLEMS)]
    return found[:PROBLEM_LINES]


@dataclass(frozen=True)
class Rig:
    """Where the steps of a ladder run: the inventory mode, how many workers, their directory and database.

    ``template`` is a seeded database nobody connects to, copied for each step on the server of ``server``.
    """

    mode: str
    workers: int
    data_dir: Path
    server: str
    template: str
    env: Mapping[str, str] = field(default_factory=dict)


def step(target: float, window: float, settling: tuple[float, float], rig: Rig) -> dict:
    """One ladder step: fresh workers with every agent on at ``target``, settled, their lag over ``window`` s."""
    with (
        database_copy(rig.server, rig.template, "benchstep") as dsn,
        bench_workers(target, rig.workers, rig.data_dir, {**rig.env, **agents_on(rig.mode), "PG_DSN": dsn}) as workers,
    ):
        wait_members(workers[0].app_id, len(workers))
        settled = settle(LagReader(workers[0].app_id, consumed_topics(workers[0])), *settling)
        samples, achieved, used = sample_window(workers, window, dsn)
        return {
            "target": target,
            "mode": rig.mode,
            "workers": len(workers),
            "achieved": round(achieved, 2),
            **verdict(samples, target, achieved),
            "settle_s": round(settled, 1),
            "samples": len(samples),
            "rss_mb": [round(worker.rss_mb(), 1) for worker in workers],
            **used,
            "ledger": [worker.stats().get("ledger", {}) for worker in workers],
            "log_problems": log_problems(workers),
        }


def step_line(row: dict) -> str:
    """One line about a step, as the ladder prints it."""
    cpu, slopes = row["cpu"], row["slopes_per_s"]
    workers = "+".join(
        f"{pct:.0f} (main {main:.0f})" for pct, main in zip(cpu["workers_pct"], cpu["main_threads_pct"], strict=True)
    )
    return (
        f"  (c) {row['mode']:<8} {row['workers']}w {row['target']:>7,.0f}/s: achieved {row['achieved']:>8,.1f}/s, "
        f"lag slope {row['slope_per_s']:>7,.1f}/s +- {row['slope_error_per_s']:,.1f} "
        f"(orders {slopes[ORDERS]:,.1f}, requests {slopes[REQUESTS]:,.1f}), final lag {row['final_lag']:>7,}, "
        f"orders decided {row['agents_per_s'].get('orders decided', 0):,.0f}/s; CPU % workers {workers}, "
        f"broker {cpu['broker_pct']:.0f}, pg {cpu['postgres_backends_pct']:.0f}, machine {cpu['machine_pct']:.0f}"
        f"/{100 * (cpu['machine_cores'] or 1)}; RSS MB {'/'.join(f'{mb:.0f}' for mb in row['rss_mb'])}; "
        f"{'held' if row['held'] else 'not held'}"
        + (f"; {len(row['log_problems'])} error lines in the logs" if row["log_problems"] else "")
    )


def ladder(
    targets: list[float],
    window: float,
    settling: tuple[float, float],
    rig: Rig,
    budget: float | None = None,
    every: bool = False,
) -> dict:
    """Climb ``targets`` until a step does not hold (``every``: measure them all); (c), the RSS there, every step.

    With a ``budget`` (seconds), no step starts that would end past it if it took as long as the previous one.
    """
    steps: list[dict] = []
    started = last = time.monotonic()
    for target in targets:
        now = time.monotonic()
        if steps and budget is not None and (now - started) + (now - last) > budget:
            break
        last = now
        steps.append(step(target, window, settling, rig))
        print(step_line(steps[-1]), flush=True)
        for line in steps[-1]["log_problems"]:
            print(f"      {line}", flush=True)
        if not steps[-1]["held"] and not every:
            break
    held = [row for row in steps if row["held"]]
    best = held[-1] if held else None
    stopped = "not held" if not steps[-1]["held"] else ("top" if len(steps) == len(targets) else "budget")
    at = best or steps[0]
    return {
        "mode": rig.mode,
        "workers": rig.workers,
        "stopped": stopped,
        "events_per_s": best["target"] if best else 0.0,
        "achieved": best["achieved"] if best else 0.0,
        "rss_mb": max(at["rss_mb"]),
        "rss_mb_workers": at["rss_mb"],
        "rss_at": at["target"],
        "rss_step_held": best is not None,
        "steps": steps,
    }


def rest_rss(settling: tuple[float, float], data_dir: Path, env: Mapping[str, str] | None = None) -> float:
    """(d) at rest: VmRSS in MiB of a worker with every agent on (kafka mode) at TARGET_EPS=1, once settled."""
    with bench_worker(REST_TARGET, data_dir, {**(env or {}), **agents_on("kafka")}) as worker:
        settle(LagReader(worker.app_id, consumed_topics(worker)), *settling)
        return round(worker.rss_mb(), 1)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="(c) alone: the lag of the agents at given targets, every step.")
    parser.add_argument("--mode", choices=MODES, action="append", help="inventory mode (repeatable; default both)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per step (default 1)")
    parser.add_argument("--targets", type=float, nargs="+", default=[1_000.0, 3_000.0], help="events/s")
    parser.add_argument("--window", type=float, default=20.0, help="seconds sampled per step (default 20)")
    parser.add_argument("--settle", type=float, nargs=2, default=(5.0, 30.0), metavar=("LEAST", "MOST"))
    parser.add_argument("--stop-at-miss", action="store_true", help="stop at the first step that does not hold")
    parser.add_argument("--json", type=Path, help="also write the steps here")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/datagen-lag-bench"), help="DATA_DIRs and logs")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    """Measure the given targets in each mode, on a throwaway database seeded at the defaults; exit 0."""
    options = _arguments(argv)
    server = load_settings(os.environ).pg_dsn.get_secret_value()
    options.work_dir.mkdir(parents=True, exist_ok=True)
    results = []
    with throwaway_database(server, "benchstock") as template:
        seed_database(load_settings({**os.environ, "PG_DSN": template}))
        for mode in options.mode or MODES:
            rig = Rig(mode, options.workers, options.work_dir, server, template)
            results.append(
                ladder(options.targets, options.window, tuple(options.settle), rig, every=not options.stop_at_miss)
            )
    if options.json:
        options.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
