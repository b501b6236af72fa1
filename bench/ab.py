"""The generation ceiling (b) of two checkouts, run alternately: did a change move it?

    .venv/bin/python -m bench.ab BEFORE_DIR AFTER_DIR [--rounds 3] [--window 30] [--workers 1]

Each directory is a checkout of this project (``git worktree add --detach ../before <commit>``; link its ``.stack`` to
the running stack's). One seeded throwaway database serves both. Each round runs ``bench.generation_bench.ceiling``
once per checkout, in a child process whose ``PYTHONPATH`` and working directory are that checkout (so its workers
run its code), the order swapped every round so neither side always runs first. Prints a line per run and the mean
of each side; nothing else may run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import mean

from app.settings import load_settings
from db.seed import seed_database
from db.throwaway import throwaway_database

CHILD = """
import json, sys
from pathlib import Path
from bench import generation_bench
window, work, dsn, workers = float(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
print("ROW " + json.dumps(generation_bench.ceiling(window, work, {"PG_DSN": dsn}, 5.0, workers)))
"""


def ceiling(tree: Path, window: float, dsn: str, workers: int) -> dict:
    """One ceiling run of the checkout ``tree``: its row (achieved, cpu_us_per_event, ...)."""
    work = tempfile.mkdtemp(prefix="datagen-ab-")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(window), work, dsn, str(workers)],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, check=False,
    )
    rows = [line[4:] for line in done.stdout.splitlines() if line.startswith("ROW ")]
    if not rows:
        problem = f"bench.ab: the run in {tree} failed (logs in {work}):\n{done.stderr[-2000:]}"
        raise SystemExit(problem)
    return dict(json.loads(rows[0]))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=1)
    options = parser.parse_args(argv)
    sides = {"before": options.before.resolve(), "after": options.after.resolve()}
    found: dict[str, list[dict]] = {name: [] for name in sides}
    server = load_settings(os.environ).pg_dsn.get_secret_value()
    with throwaway_database(server, "abdata") as dsn:
        seed_database(load_settings({**os.environ, "PG_DSN": dsn}))
        for round_ in range(options.rounds):
            for name in (["before", "after"] if round_ % 2 == 0 else ["after", "before"]):
                row = ceiling(sides[name], options.window, dsn, options.workers)
                found[name].append(row)
                print(f"round {round_} {name:6s} {row['achieved']:>10,.0f} events/s "
                      f"{row['cpu_us_per_event']:.2f} CPU us/event", flush=True)
    for name, rows in found.items():
        print(f"{name:6s} mean {mean(r['achieved'] for r in rows):>10,.0f} events/s "
              f"{mean(r['cpu_us_per_event'] for r in rows):.2f} CPU us/event ({sides[name]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
