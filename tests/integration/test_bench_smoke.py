"""The benchmark harness (``make bench``) still runs end to end: tiny windows, every figure (a)-(f) produced.

(c) runs in both inventory modes with two worker processes a step, each generating its shards and running agents.

Benchmarks are not tests: nothing here looks at a timing, only that each figure is a number and the JSON is written.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.run import Plan, run

pytestmark = pytest.mark.integration

TINY = Plan(
    "smoke",
    seed_users=2_000,
    seed_products=200,
    ceiling_window=3.0,
    ceiling_workers=(1,),
    perf_seconds=1.0,
    accuracy_targets=(10.0,),
    group_accuracy=(),
    accuracy_window=2.0,
    low_rate_window=2.0,
    settle=1.0,
    ladder=(200.0,),
    ladder_window=4.0,
    ladder_settle=(1.0, 5.0),
    workers=2,
)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_bench_produces_every_figure(tmp_path: Path) -> None:
    report = run(TINY, tmp_path / "results", tmp_path / "work")

    figures = {row["figure"]: row["value"] for row in report["table"]}
    every = ("(a)", "(b)", "(b)/(a)", "(d) RSS at rest", "(e)", "(f)")
    per_mode = ("(c) end to end, flat lag ({} mode)", "(d) RSS at (c) ({} mode)")
    for prefix in every + tuple(row.format(mode) for row in per_mode for mode in ("kafka", "postgres")):
        values = [value for name, value in figures.items() if name.startswith(prefix)]
        assert values, f"no figure {prefix} in {sorted(figures)}"
        assert all(_number(value) for value in values), f"{prefix}: {values}"
    assert len([name for name in figures if name.startswith("(f)")]) == len(TINY.accuracy_targets)
    assert _number(report["figures"]["generation"]["cpu_us_per_event"])
    assert _number(report["figures"]["kafka"]["mb_per_s"])
    for mode in ("kafka", "postgres"):
        (step,) = report["figures"]["end_to_end"][mode]["steps"]
        assert step["mode"] == mode
        assert step["workers"] == TINY.workers
        assert len(step["rss_mb"]) == len(step["cpu"]["workers_pct"]) == TINY.workers
        assert all(_number(value) for value in [*step["rss_mb"], *step["cpu"]["workers_pct"]])
        assert step["cpu"]["broker_found"]
        assert _number(step["cpu"]["broker_pct"])
        assert set(step["slopes_per_s"]) == {"orders", "requests"}

    written = sorted(path.name for path in (tmp_path / "results").iterdir())
    assert "latest.json" in written
    assert len(written) == 2
    latest = json.loads((tmp_path / "results" / "latest.json").read_text())
    assert latest["table"] == report["table"]
    assert {"cpu_model", "cores", "python", "faust-streaming", "librdkafka", "kafka_broker", "java"} <= set(
        latest["machine"]
    )
