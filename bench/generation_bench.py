"""Benchmark of event generation: rate accuracy at given targets (f), and the most workers can emit (b).

Used by ``bench/run.py`` (``make bench``). Each run starts fresh workers of one APP_ID (``bench.worker.bench_workers``)
with the fulfilment agents off (AGENTS_ENABLED=false: workers that only generate) and a flat rate, waits until they
hold every generation shard between them, lets them settle, then reads the high watermarks of the generated topics
at the start and end of the window: achieved = records Kafka took in the window / window seconds. What the workers
queued in their producers (their ``/stats/``) is reported beside it. The ceiling runs ask for a rate far beyond reach
(TARGET_EPS=1,000,000) and also report the workers' CPU microseconds per delivered event (utime + stime from
``/proc/<pid>/stat``), their resident memory (VmRSS) at the end of the window, and the mean size of the records
written (what the Kafka ceiling (a) is run at).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from app.wire.roles import GENERATED
from bench.producer_perf import mean_record_bytes
from bench.worker import BenchWorker, bench_workers, delivered

CEILING_TARGET = 1_000_000.0
#: A generate-only worker writes the topics of app.wire.roles.GENERATED (with the agents off, inventory changes go
#: straight to their topic).
GENERATE_ONLY = {"AGENTS_ENABLED": "false"}


def measure(workers: list[BenchWorker], target: float, window: float, settle: float) -> dict[str, float]:
    """Delivered rate, CPU per event and resident memory of ``workers`` over ``window`` s after ``settle`` s."""
    topics = [workers[0].topics[role] for role in GENERATED]
    time.sleep(settle)
    t_first, first = time.monotonic(), delivered(topics)
    queued_first = sum(worker.stats()["emitted"] for worker in workers)
    cpu_first = sum(worker.cpu_seconds() for worker in workers)
    time.sleep(window)
    t_last, last = time.monotonic(), delivered(topics)
    queued_last = sum(worker.stats()["emitted"] for worker in workers)
    cpu_last = sum(worker.cpu_seconds() for worker in workers)
    waits = sum(worker.stats()["backpressure_waits"] for worker in workers)
    seconds = t_last - t_first
    achieved = (last - first) / seconds
    return {
        "target": target,
        "workers": len(workers),
        "achieved": round(achieved, 2),
        "queued": round((queued_last - queued_first) / seconds, 2),
        "ratio": round(achieved / target, 4),
        "cpu_us_per_event": round((cpu_last - cpu_first) / max(last - first, 1) * 1e6, 2),
        "rss_mb": round(max(worker.rss_mb() for worker in workers), 1),
        "backpressure_waits": waits,
        "window_s": round(seconds, 2),
    }


def run_at(
    target: float,
    window: float,
    data_dir: Path,
    env: Mapping[str, str] | None = None,
    settle: float = 5.0,
    workers: int = 1,
) -> dict[str, float]:
    """Rate accuracy (f): ``workers`` generate-only workers at ``target`` events/s in all, over ``window`` s."""
    with bench_workers(target, workers, data_dir, {**GENERATE_ONLY, **(env or {})}) as running:
        return measure(running, target, window, settle)


def ceiling(
    window: float, data_dir: Path, env: Mapping[str, str] | None = None, settle: float = 5.0, workers: int = 1
) -> dict:
    """Generation ceiling (b): ``workers`` generate-only workers asked for far more than they can do, plus the mean
    record size."""
    with bench_workers(CEILING_TARGET, workers, data_dir, {**GENERATE_ONLY, **(env or {})}) as running:
        row: dict = measure(running, CEILING_TARGET, window, settle)
        row["record_size"] = mean_record_bytes(list(running[0].topics.values()))
        return row
