"""``make bench``: every figure of issue 6, (a) to (f), in one table, also written as JSON under bench/results/.

    .venv/bin/python -m bench.run [--quick] [--out-dir bench/results]

Runs against the local stack (``bash stack/stack.sh up``), one step after another, each on fresh topics:
  (e) seeding 100,000 users and 10,000 products into a throwaway database (bench/seed_bench.py);
  (b) the generation ceiling: generate-only workers (1, then 2) asked for 1,000,000 events/s, counting what reached
      Kafka (the topics' high watermarks) (bench/generation_bench.py); the first run's records also give the mean
      record size (a) runs at;
  (a) Kafka's own ProducerPerformance at that size with our producer settings (bench/producer_perf.py), and
      the ratio (b) / (a) of this run for each number of workers;
  (f) rate accuracy at 10, 1,000 and 10,000 events/s with one worker, and of the total rate of 2 and 3 workers at
      10,000 events/s (bench/generation_bench.py);
  (d) the resident memory of a worker with every agent on, at rest and at the (c) rate (bench/lag_bench.py);
  (c) the highest target whose lag in input events not yet decided stays flat, with every agent on, in each
      inventory mode (CANON_INVENTORY=kafka, then =postgres), each its own ladder of ``Plan.workers`` worker
      processes per step (bench/lag_bench.py), with the workers' CPU and memory and the broker's CPU.
The workers share one throwaway database seeded at the defaults, so nobody else's data is touched; each (c) step
runs on its own copy of it. Figures that miss issue 6's and issue 11's targets are marked ``miss``; the exit status
does not depend on them (a benchmark, not a test). ``--quick`` (``make bench-quick``) runs the same with shorter
windows, a shorter, time-boxed ladder per mode and one worker per (c) step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import confluent_kafka

from app.settings import load_settings
from bench import generation_bench, lag_bench, producer_perf, seed_bench
from bench.worker import database_copy
from db.seed import seed_database
from db.throwaway import throwaway_database

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Plan:
    """Sizes and windows (seconds) of one benchmark run."""

    name: str
    seed_users: int = 100_000
    seed_products: int = 10_000
    ceiling_window: float = 60.0
    perf_seconds: float = 20.0
    ceiling_workers: tuple[int, ...] = (1, 2)  # (b) once per number of workers; the first gives the record size
    accuracy_targets: tuple[float, ...] = (10.0, 1_000.0, 10_000.0)
    group_accuracy: tuple[tuple[int, float], ...] = ((2, 10_000.0), (3, 10_000.0))  # (f) (workers, target)
    accuracy_window: float = 60.0
    low_rate_window: float = 60.0  # targets <= BESIDE_REST: they run beside the (d)-at-rest worker anyway
    settle: float = 5.0
    ladder: tuple[float, ...] = (1_000.0, 2_000.0, 5_000.0, 10_000.0, 20_000.0)
    ladder_window: float = 60.0
    ladder_settle: tuple[float, float] = (10.0, 90.0)  # at least, at most (see bench/lag_bench.py)
    ladder_budget: float | None = None  # seconds per mode; no new step once it would be exceeded
    workers: int = 2  # worker processes per (c) step, each generating its shards and running the agents
    modes: tuple[str, ...] = lag_bench.MODES  # CANON_INVENTORY of each (c) ladder


FULL = Plan("full")
QUICK = Plan(
    "quick",
    ceiling_window=8.0,
    perf_seconds=5.0,
    accuracy_window=5.0,
    low_rate_window=15.0,
    settle=2.0,
    ladder=(200.0, 1_000.0, 5_000.0, 10_000.0),
    ladder_window=12.0,
    ladder_settle=(3.0, 12.0),
    ladder_budget=45.0,
    workers=1,
)

#: Issue 6's and issue 12's (b) targets by number of workers, events/s delivered to Kafka.
CEILING_TARGETS = {1: 50_000, 2: 100_000}
#: Issue 11's (c) target in each inventory mode, events/s.
END_TO_END_TARGETS = {"kafka": 10_000, "postgres": 5_000}


def machine() -> dict[str, object]:
    """CPU model, core count and the versions the figures were measured with."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown",
    )
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "faust-streaming": version("faust-streaming"),
        "confluent-kafka": version("confluent-kafka"),
        "librdkafka": confluent_kafka.libversion()[0],
        "fastavro": version("fastavro"),
        "aiokafka": version("aiokafka"),
        **producer_perf.tool_versions(),
    }


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


#: Accuracy targets at most this low run beside the (d)-at-rest worker: neither needs more than a trickle of CPU.
BESIDE_REST = 100.0


def _accuracy(targets: list[float], window: float, plan: Plan, work_dir: Path, env: dict[str, str]) -> list[dict]:
    results = []
    for target in targets:
        _log(f"(f) rate accuracy at {target:,.0f} events/s over {window:.0f} s")
        results.append(generation_bench.run_at(target, window, work_dir, env, plan.settle))
    return results


def _workers(
    plan: Plan, work_dir: Path, env: dict[str, str], template: str, figures: dict, phases: dict[str, float]
) -> None:
    """(b), (a), (f), (d) and (c): the steps that run workers, against the workers' database in ``env``.

    Each (c) step runs on its own copy of ``template``, a copy of that database no worker connects to.
    """
    settings = load_settings(os.environ)
    clock = time.monotonic()
    figures["ceilings"] = []
    for count in plan.ceiling_workers:
        _log(f"(b) generation ceiling, {count} worker(s), over {plan.ceiling_window:.0f} s")
        figures["ceilings"].append(generation_bench.ceiling(plan.ceiling_window, work_dir, env, plan.settle, count))
    figures["generation"] = figures["ceilings"][0]
    record_size = figures["generation"]["record_size"]
    phases["b"], clock = time.monotonic() - clock, time.monotonic()
    _log(f"(a) Kafka ProducerPerformance at {record_size} bytes per record, about {plan.perf_seconds:.0f} s")
    figures["kafka"] = producer_perf.kafka_ceiling(
        record_size, plan.perf_seconds, settings.topic_partitions, settings.topic_replication_factor
    )
    phases["a"], clock = time.monotonic() - clock, time.monotonic()
    _log("(d) resident memory at rest, every agent on, TARGET_EPS=1 (beside the low-rate accuracy runs)")
    low = [target for target in plan.accuracy_targets if target <= BESIDE_REST]
    with ThreadPoolExecutor(1) as pool:
        rest = pool.submit(lag_bench.rest_rss, plan.ladder_settle, work_dir, env)
        figures["accuracy"] = _accuracy(low, plan.low_rate_window, plan, work_dir, env)
        figures["rest_rss_mb"] = rest.result()
    high = [target for target in plan.accuracy_targets if target > BESIDE_REST]
    figures["accuracy"] += _accuracy(high, plan.accuracy_window, plan, work_dir, env)
    for count, target in plan.group_accuracy:
        _log(f"(f) rate accuracy, {count} workers together at {target:,.0f} events/s, {plan.accuracy_window:.0f} s")
        figures["accuracy"].append(
            generation_bench.run_at(target, plan.accuracy_window, work_dir, env, plan.settle, count)
        )
    phases["f+d"], clock = time.monotonic() - clock, time.monotonic()
    figures["end_to_end"] = {}
    for mode in plan.modes:
        _log(f"(c) end to end, {mode} mode, {plan.workers} worker(s) a step, ladder "
             f"{', '.join(f'{t:,.0f}' for t in plan.ladder)} over {plan.ladder_window:.0f} s")
        rig = lag_bench.Rig(mode, plan.workers, work_dir, settings.pg_dsn.get_secret_value(), template, env)
        figures["end_to_end"][mode] = lag_bench.ladder(
            list(plan.ladder), plan.ladder_window, plan.ladder_settle, rig, plan.ladder_budget
        )
        phases[f"c {mode}"], clock = time.monotonic() - clock, time.monotonic()


def measure(plan: Plan, work_dir: Path) -> dict:
    """Run every step of ``plan``; the raw figures, with the seconds each phase took."""
    phases: dict[str, float] = {}
    clock = time.monotonic()
    _log(f"(e) seeding {plan.seed_users:,} users and {plan.seed_products:,} products")
    figures: dict = {"seed": seed_bench.run_seed(plan.seed_users, plan.seed_products)}
    phases["e"] = time.monotonic() - clock
    server = load_settings(os.environ).pg_dsn.get_secret_value()
    with throwaway_database(server, "benchdata") as dsn:
        env = {"PG_DSN": dsn}
        seed_database(load_settings({**os.environ, **env}))  # the workers' reference data, at the defaults
        with database_copy(server, dsn, "benchstock") as template:  # before any worker connects to ``dsn``
            _workers(plan, work_dir, env, template, figures, phases)
    figures["phase_seconds"] = {name: round(seconds, 1) for name, seconds in phases.items()}
    return figures


def rows(figures: dict) -> list[dict]:
    """The table: one row per figure with its value, unit, issue 6's (and for (c) issue 11's) target and pass/miss."""
    gen, kafka, seed = figures["generation"], figures["kafka"], figures["seed"]
    table = [
        _row("(a) Kafka ProducerPerformance", kafka["records_per_s"], "records/s",
             f"{kafka['mb_per_s']:.1f} MB/s at {kafka['record_size']} B/record"),
    ]
    for row in figures.get("ceilings", [gen]):
        count = row.get("workers", 1)
        goal = CEILING_TARGETS.get(count)
        table.append(_row(f"(b) generation, {count} worker(s), agents off", row["achieved"], "events/s",
                          f"delivered to Kafka; {row.get('queued', 0):,.0f}/s queued; "
                          f"{row['cpu_us_per_event']:.1f} CPU us/event, {row['rss_mb']:.0f} MB",
                          "" if goal is None else f">= {goal}", None if goal is None else row["achieved"] >= goal))
        table.append(_row(f"(b)/(a) ratio, {count} worker(s)", round(row["achieved"] / kafka["records_per_s"], 4),
                          "", "same run"))
    for mode, e2e in figures["end_to_end"].items():
        goal = END_TO_END_TARGETS[mode]
        table.append(_row(f"(c) end to end, flat lag ({mode} mode)", e2e["events_per_s"], "events/s",
                          _ladder_detail(e2e), f">= {goal}", e2e["events_per_s"] >= goal))
    table.append(_row("(d) RSS at rest", figures["rest_rss_mb"], "MB", "TARGET_EPS=1, agents on", "<= 200",
                      figures["rest_rss_mb"] <= 200))
    for mode, e2e in figures["end_to_end"].items():
        where = f"{e2e['rss_at']:,.0f}/s" + ("" if e2e["rss_step_held"] else " (first step, none held)")
        table.append(_row(f"(d) RSS at (c) ({mode} mode)", e2e["rss_mb"], "MB",
                          f"largest worker; each at {where}: {' / '.join(f'{mb:.0f}' for mb in e2e['rss_mb_workers'])}",
                          "<= 200 each", e2e["rss_mb"] <= 200))
    table.append(_row("(e) seed 100k users + 10k products", seed["seconds"], "s",
                      f"{seed['rows_per_second']:,} rows/s, {seed['rows']:,} rows", "< 15", seed["seconds"] < 15))
    for row in figures["accuracy"]:
        who = "" if row.get("workers", 1) == 1 else f", {row['workers']} workers"
        table.append(_row(f"(f) accuracy at {row['target']:,.0f}/s{who}", row["ratio"], "achieved/target",
                          f"{row['achieved']:.1f}/s over {row['window_s']:.0f} s", "within 1%",
                          abs(row["ratio"] - 1) <= 0.01))
    return table


def _ladder_detail(e2e: dict) -> str:
    last = e2e["steps"][-1]
    held = f"{e2e['workers']} worker(s); " + (
        f"achieved {e2e['achieved']:,.0f}/s" if e2e["events_per_s"] else "no step held"
    )
    if last["held"]:
        outcome = "top of the ladder" if e2e["stopped"] == "top" else "ladder time budget reached"
    else:
        outcome = (f"{last['target']:,.0f}/s: achieved {last['achieved']:,.0f}/s, lag slope "
                   f"{last['slope_per_s']:,.0f}/s, final {last['final_lag']:,}")
    cpu = last["cpu"]
    return (f"{held}; {outcome}; CPU at {last['target']:,.0f}/s: workers "
            f"{' + '.join(f'{pct:.0f}%' for pct in cpu['workers_pct'])}, broker {cpu['broker_pct']:.0f}%, "
            f"machine {cpu['machine_pct']:.0f}% of {100 * (cpu['machine_cores'] or 1)}%")


def _row(figure: str, value: float, unit: str, detail: str, target: str = "", met: bool | None = None) -> dict:
    verdict = "" if met is None else ("pass" if met else "miss")
    return {"figure": figure, "value": value, "unit": unit, "detail": detail, "target": target, "verdict": verdict}


def render(table: list[dict]) -> str:
    """The table as aligned text."""
    header = ("figure", "value", "unit", "target", "", "detail")
    lines = [(r["figure"], _value(r["value"]), r["unit"], r["target"], r["verdict"], r["detail"]) for r in table]
    widths = [max(len(str(cells[i])) for cells in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
           for cells in [header, *lines]]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def _value(value: float) -> str:
    """Ratios and seconds under 10 to 4 places; counts, rates and 0 (a ladder where no step held) as integers."""
    return f"{value:.4f}" if 0 < value < 10 else f"{value:,.0f}"


def write(report: dict, out_dir: Path) -> Path:
    """``<UTC timestamp>.json`` and ``latest.json`` in ``out_dir``; the timestamped path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2) + "\n"
    path = out_dir / f"{report['started_utc'].replace(':', '').replace('-', '')}.json"
    path.write_text(text, encoding="utf-8")
    (out_dir / "latest.json").write_text(text, encoding="utf-8")
    return path


def run(plan: Plan, out_dir: Path, work_dir: Path | None = None) -> dict:
    """Measure, print the table, write the JSON; the report."""
    started = datetime.now(UTC)
    clock = time.monotonic()
    own_dir = work_dir is None
    work_dir = work_dir or Path(tempfile.gettempdir()) / f"datagen-bench-{uuid.uuid4().hex[:6]}"
    work_dir.mkdir(parents=True, exist_ok=True)
    figures = measure(plan, work_dir)  # on failure the workers' logs stay in work_dir
    if own_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    table = rows(figures)
    report: dict[str, Any] = {
        "started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round(time.monotonic() - clock, 1),
        "plan": asdict(plan),
        "machine": machine(),
        "table": table,
        "figures": figures,
    }
    path = write(report, out_dir)
    m = report["machine"]
    print(f"retail-datagen benchmark ({plan.name}), {report['started_utc']}, {m['cpu_model']}, {m['cores']} cores, "
          f"{report['seconds']:.0f} s")
    print(render(table))
    print(f"written: {path} and {out_dir / 'latest.json'}")
    return report


def main(argv: list[str]) -> int:
    """Run the benchmark (exit 0 whatever the figures)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows and ladder (under 3 minutes)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    options = parser.parse_args(argv)
    run(QUICK if options.quick else FULL, options.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
