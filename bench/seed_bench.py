"""Benchmark of the reference-data seed: rows per second per table and in total, into a throwaway database.

    .venv/bin/python bench/seed_bench.py [--users 100000] [--products 10000] [--max-seconds 15] [--json out.json]

Postgres is the one PG_DSN names (default: the local stack); the benchmark creates its own database beside
it and drops it afterwards. Exits 1 when the seed fails or takes longer than --max-seconds. ``run_seed`` is
figure (e) of ``bench/run.py`` (``make bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.exceptions import DatagenError
from app.settings import load_settings
from db.seed import seed_database
from db.throwaway import throwaway_database


@dataclass
class StepTimer:
    """A seed Progress that records each step's rows and the seconds since the previous step."""

    started: float = field(default_factory=time.perf_counter)
    steps: list[tuple[str, int, float]] = field(default_factory=list)

    def __call__(self, step: str, rows: int) -> None:
        now = time.perf_counter()
        self.steps.append((step, rows, now - self.started))
        self.started = now


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time the reference-data seed into a throwaway database.")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--warehouses", type=int, default=5)
    parser.add_argument("--suppliers", type=int, default=50)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-seconds", type=float, default=15.0, help="fail when the seed takes longer")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser.parse_args(argv)


def _line(step: str, rows: int, seconds: float) -> str:
    rate = f"{rows / seconds:>12,.0f}" if rows and seconds > 0 else ""
    return f"  {step:<20} {rows:>10,} {seconds:8.2f} {rate}".rstrip()


def run_seed(users: int, products: int, warehouses: int = 5, suppliers: int = 50, seed: int = 42) -> dict:
    """Seed the sizes into a throwaway database beside PG_DSN's; the figures (raises DatagenError or OSError)."""
    sizes = {
        "N_USERS": str(users),
        "N_PRODUCTS": str(products),
        "N_WAREHOUSES": str(warehouses),
        "N_SUPPLIERS": str(suppliers),
        "RANDOM_SEED": str(seed),
    }
    server = load_settings(os.environ).pg_dsn.get_secret_value()
    with throwaway_database(server, "seedbench") as dsn:
        settings = load_settings({**os.environ, **sizes, "PG_DSN": dsn})
        timer = StepTimer()
        result = seed_database(settings, progress=timer)
    total_rows = sum(result.rows.values())
    return {
        "benchmark": "seed",
        "sizes": sizes,
        "seeded": result.seeded,
        "rows": total_rows,
        "seconds": round(result.seconds, 3),
        "rows_per_second": round(total_rows / result.seconds) if result.seconds > 0 else 0,
        "steps": [{"step": step, "rows": rows, "seconds": round(seconds, 3)} for step, rows, seconds in timer.steps],
    }


def main(argv: list[str]) -> int:
    """Run the benchmark; the exit status."""
    options = _arguments(argv)
    print(f"seed benchmark: N_USERS={options.users} N_PRODUCTS={options.products} "
          f"N_WAREHOUSES={options.warehouses} N_SUPPLIERS={options.suppliers} RANDOM_SEED={options.seed}")
    try:
        figures = run_seed(options.users, options.products, options.warehouses, options.suppliers, options.seed)
    except (DatagenError, OSError) as error:
        print(f"seed benchmark failed: {error}", file=sys.stderr)
        return 1
    print(f"  {'step':<20} {'rows':>10} {'seconds':>8} {'rows/s':>12}")
    for step in figures["steps"]:
        print(_line(step["step"], step["rows"], step["seconds"]))
    print(_line("total", figures["rows"], figures["seconds"]))
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    if not figures["seeded"]:
        print("seed benchmark failed: the throwaway database was not seeded", file=sys.stderr)
        return 1
    if figures["seconds"] > options.max_seconds:
        seconds = figures["seconds"]
        print(f"seed benchmark failed: {seconds:.2f} s > --max-seconds {options.max_seconds}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
