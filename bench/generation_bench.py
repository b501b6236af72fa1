"""Benchmark of event generation: rate accuracy at given targets (f), and the most one worker can emit (b).

Used by ``bench/run.py`` (``make bench``). Each run starts a fresh worker (``bench.worker.bench_worker``) with the
fulfilment agents off (AGENTS_ENABLED=false: a worker that only generates) and a flat rate, lets it settle, then
reads ``/stats/`` at the start and end of the window: achieved = events emitted in the window / window seconds.
The ceiling run asks for a rate far beyond reach (TARGET_EPS=1,000,000) and also reports the worker's CPU
microseconds per event (utime + stime from ``/proc/<pid>/stat``) and its resident memory (VmRSS) at the end of
the window, and the mean size of the records it wrote (what the Kafka ceiling (a) is run at).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from bench.producer_perf import mean_record_bytes
from bench.worker import BenchWorker, bench_worker

CEILING_TARGET = 1_000_000.0
GENERATE_ONLY = {"AGENTS_ENABLED": "false"}


def measure(worker: BenchWorker, target: float, window: float, settle: float) -> dict[str, float]:
    """Achieved rate, CPU per event and resident memory of ``worker`` over ``window`` s after ``settle`` s."""
    time.sleep(settle)
    first, cpu_first, t_first = worker.stats(), worker.cpu_seconds(), time.monotonic()
    time.sleep(window)
    last, cpu_last, t_last = worker.stats(), worker.cpu_seconds(), time.monotonic()
    emitted = last["emitted"] - first["emitted"]
    achieved = emitted / (t_last - t_first)
    return {
        "target": target,
        "achieved": round(achieved, 2),
        "ratio": round(achieved / target, 4),
        "cpu_us_per_event": round((cpu_last - cpu_first) / max(emitted, 1) * 1e6, 2),
        "rss_mb": round(worker.rss_mb(), 1),
        "backpressure_waits": last["backpressure_waits"],
        "window_s": round(t_last - t_first, 2),
    }


def run_at(
    target: float, window: float, data_dir: Path, env: Mapping[str, str] | None = None, settle: float = 5.0
) -> dict[str, float]:
    """Rate accuracy (f): a generate-only worker at ``target`` events/s, measured over ``window`` s."""
    with bench_worker(target, data_dir, {**GENERATE_ONLY, **(env or {})}) as worker:
        return measure(worker, target, window, settle)


def ceiling(window: float, data_dir: Path, env: Mapping[str, str] | None = None, settle: float = 5.0) -> dict:
    """Generation ceiling (b): a generate-only worker asked for far more than it can do, plus its mean record size."""
    with bench_worker(CEILING_TARGET, data_dir, {**GENERATE_ONLY, **(env or {})}) as worker:
        row: dict = measure(worker, CEILING_TARGET, window, settle)
        row["record_size"] = mean_record_bytes(list(worker.topics.values()))
        return row
