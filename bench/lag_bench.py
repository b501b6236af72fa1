"""End to end (c) and memory (d): the highest rate at which every agent keeps up, and the worker's resident memory.

Each step of a ladder of targets runs a fresh worker (``bench.worker.bench_worker``) with generation and every
agent on (AGENTS_ENABLED=true, CANON_INVENTORY=kafka, the rest at defaults). It settles for at least ``least``
seconds, then until its group has committed everything its topics held at that moment (a fresh worker first
consumes the opening stock, one RESTOCK per product and warehouse), at most ``most`` seconds. Then the
consumer lag of the worker's group (its APP_ID) is sampled every ``SAMPLE_SECONDS`` over the window, on every
topic it consumes: the orders topic, the inventory-changes topic and ``<APP_ID>-orders-by-product``. Lag is the
sum over their partitions of high watermark - committed offset (a partition with no commit yet counts whole: the
topics are new and Faust starts them from the earliest offset), read with confluent-kafka's AdminClient.

Flat lag. Faust commits every ``broker_commit_interval`` (2.8 s), so committed lag is a sawtooth: judged over the
whole window, never from one sample, and only at the samples taken just after a commit (the committed total grew
since the previous sample, at most ``SAMPLE_SECONDS`` earlier), where it is the agents' real backlog; with fewer
than 3 such points (the group hardly commits) every sample counts. The lag is flat when
  * slope: on every consumed topic, the least-squares slope of its lag over time is at most 1% of the target
    (events/s), and
  * bound: the mean total lag over the second half of the window is at most 5 s worth of target events, or
    5,000 records at low targets (Faust's fetch buffers and the opening stock alone hold that many).
A step holds when its lag is flat and the generator achieved at least 97% of the target (a rate that was not
generated was not consumed either). The ladder stops at the first step that does not hold; (c) is the
highest target that held (0 when none did) and (d) at (c) is the worker's VmRSS at the end of that step's window.

(d) at rest: a worker with every agent on at TARGET_EPS=1, its VmRSS once settled the same way.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from bench.worker import BenchWorker, admin, bench_worker

SAMPLE_SECONDS = 0.25
SLOPE_SHARE = 0.01
BOUND_SECONDS = 5.0
BOUND_FLOOR = 5_000
MIN_ACHIEVED = 0.97
AGENTS_ON = {"AGENTS_ENABLED": "true", "CANON_INVENTORY": "kafka"}
REST_TARGET = 1.0


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
    """Total committed lag of one consumer group over the partitions of some topics."""

    group: str
    topics: list[str]
    client: AdminClient = field(default_factory=admin)
    partitions: list[TopicPartition] = field(default_factory=list)

    def __post_init__(self) -> None:
        metadata = self.client.list_topics(timeout=10).topics
        missing = [topic for topic in self.topics if topic not in metadata]
        if missing:
            msg = f"consumed topics missing: {', '.join(missing)}"
            raise SystemExit(msg)
        self.partitions = [TopicPartition(t, p) for t in self.topics for p in sorted(metadata[t].partitions)]

    def read(self) -> tuple[dict[str, int], int]:
        """Lag per topic (high watermarks minus committed offsets) and the committed offsets summed."""
        request = [ConsumerGroupTopicPartitions(self.group, self.partitions)]
        committed_future = self.client.list_consumer_group_offsets(request, request_timeout=5)[self.group]
        highs = self.client.list_offsets({tp: OffsetSpec.latest() for tp in self.partitions}, request_timeout=5)
        committed = {(tp.topic, tp.partition): max(tp.offset, 0) for tp in committed_future.result().topic_partitions}
        lags = dict.fromkeys(self.topics, 0)
        for tp, future in highs.items():
            position = committed.get((tp.topic, tp.partition), 0)
            lags[tp.topic] += max(0, future.result().offset - position)
        return lags, sum(committed.values())

    def total(self) -> int:
        """Lag summed over the topics."""
        return sum(self.read()[0].values())


def consumed_topics(worker: BenchWorker) -> list[str]:
    """The topics the worker's agents consume (see agents/fulfilment.py)."""
    return [worker.topics["orders"], worker.topics["inventory_changes"], f"{worker.app_id}-orders-by-product"]


def slope(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of lag over time, in events per second."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (y - mean_y) for t, y in points) / spread if spread else 0.0


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
    slopes = {topic: round(slope([(p.t, p.lags[topic]) for p in points]), 2) for topic in points[0].lags}
    final_lag = sum(tail) / len(tail)
    flat = max(slopes.values()) <= SLOPE_SHARE * target and final_lag <= bound(target)
    return {
        "slope_per_s": max(slopes.values()),
        "slopes_per_s": slopes,
        "final_lag": round(final_lag),
        "max_lag": max(sample.lag for sample in samples),
        "commit_points": len(points),
        "flat": flat,
        "held": flat and achieved >= MIN_ACHIEVED * target,
    }


def sample_window(worker: BenchWorker, window: float) -> tuple[list[Sample], float]:
    """Lag samples over ``window`` s and the generator's achieved rate over the same time."""
    reader = LagReader(worker.app_id, consumed_topics(worker))
    first, started = worker.stats()["emitted"], time.monotonic()
    samples: list[Sample] = []
    while (now := time.monotonic()) < started + window:
        samples.append(Sample(now - started, *reader.read()))
        time.sleep(max(0.0, SAMPLE_SECONDS - (time.monotonic() - now)))
    achieved = (worker.stats()["emitted"] - first) / (time.monotonic() - started)
    return samples, achieved


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


def step(
    target: float, window: float, settling: tuple[float, float], data_dir: Path, env: Mapping[str, str] | None = None
) -> dict:
    """One ladder step: a fresh worker with every agent on at ``target``, settled, its lag over ``window`` s."""
    with bench_worker(target, data_dir, {**AGENTS_ON, **(env or {})}) as worker:
        settled = settle(LagReader(worker.app_id, consumed_topics(worker)), *settling)
        samples, achieved = sample_window(worker, window)
        return {
            "target": target,
            "achieved": round(achieved, 2),
            **verdict(samples, target, achieved),
            "settle_s": round(settled, 1),
            "samples": len(samples),
            "rss_mb": round(worker.rss_mb(), 1),
            "agents": worker.stats().get("agents", {}),
        }


def ladder(
    targets: list[float],
    window: float,
    settling: tuple[float, float],
    data_dir: Path,
    env: Mapping[str, str] | None = None,
    budget: float | None = None,
) -> dict:
    """Climb ``targets`` until a step does not hold; (c), the RSS there, and every step.

    With a ``budget`` (seconds), no step starts that would end past it if it took as long as the previous one.
    """
    steps: list[dict] = []
    started = last = time.monotonic()
    for target in targets:
        now = time.monotonic()
        if steps and budget is not None and (now - started) + (now - last) > budget:
            break
        last = now
        steps.append(step(target, window, settling, data_dir, env))
        print(f"  (c) step {target:>8.0f}/s: achieved {steps[-1]['achieved']:>9.1f}/s, lag slope "
              f"{steps[-1]['slope_per_s']:>8.1f}/s, final lag {steps[-1]['final_lag']:>7}, "
              f"{'held' if steps[-1]['held'] else 'not held'}", flush=True)
        if not steps[-1]["held"]:
            break
    held = [row for row in steps if row["held"]]
    best = held[-1] if held else None
    stopped = "not held" if not steps[-1]["held"] else ("top" if len(steps) == len(targets) else "budget")
    return {
        "stopped": stopped,
        "events_per_s": best["target"] if best else 0.0,
        "achieved": best["achieved"] if best else 0.0,
        "rss_mb": (best or steps[0])["rss_mb"],
        "rss_step_held": best is not None,
        "steps": steps,
    }


def rest_rss(settling: tuple[float, float], data_dir: Path, env: Mapping[str, str] | None = None) -> float:
    """(d) at rest: VmRSS in MiB of a worker with every agent on at TARGET_EPS=1, once settled."""
    with bench_worker(REST_TARGET, data_dir, {**AGENTS_ON, **(env or {})}) as worker:
        settle(LagReader(worker.app_id, consumed_topics(worker)), *settling)
        return round(worker.rss_mb(), 1)
