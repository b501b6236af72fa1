"""``make faults``: every fault of issue 13, under load, in both inventory modes where it applies; one table, and JSON
under faults/results/.

    .venv/bin/python -m faults.run [--only NAME ...] [--modes kafka,postgres] [--short] [--out-dir faults/results]

Each (scenario, mode) gets a deployment of its own: two workers at 2,000 events/s together, the mirror on in kafka
mode, P_BAD_RECORD=0.01. Once the fault is over the deployment is settled (see faults/harness.py) and judged from the
topics and Postgres alone (faults/checks.py). A row passes when nothing was lost or doubled, the stock agrees
everywhere, exactly the bad records were dead-lettered, and the scenario's own figures hold. The stack must be up;
scenarios stop, kill and wipe its services and leave them up.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from faults.harness import deployment, stack
from faults.scenarios import BY_NAME, FULL, SCENARIOS, SHORT, Scenario, Timing

RESULTS = Path(__file__).resolve().parent / "results"
RATE = 2000.0


@dataclass
class Row:
    scenario: str
    mode: str
    figures: dict[str, Any]
    lost: int
    doubled: int
    ledger_mismatches: int
    dead_letters_wrong: int
    orders: int
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0  # the whole deployment's, start to verdict
    settle_s: float = 0.0  # of which settling, reading back and judging

    @property
    def passed(self) -> bool:
        return not (self.lost or self.doubled or self.ledger_mismatches or self.dead_letters_wrong or self.problems)


def run_sequence(
    scenarios: list[Scenario], mode: str, timing: Timing, work: Path, seed: str, rate: float = RATE
) -> list[Row]:
    """The scenarios one after the other in one deployment, settled and judged once at the end: one row each, all
    with the same verdict."""
    rng = random.Random(f"{seed}:{mode}:{','.join(s.name for s in scenarios)}")
    started = time.monotonic()
    stack("up")
    figures: list[dict[str, Any]] = []
    problems: list[list[str]] = []
    with deployment(work, mode, rate) as d:
        first = scenarios[0]
        if first.before_start is not None:
            first.before_start(d, timing)
            d.start()
        else:
            d.start()
            d.wait_generating()
        for scenario in scenarios:
            if scenario is not first and scenario.before_start is not None:
                msg = f"{scenario.name} must come first: it acts before the workers start"
                raise ValueError(msg)
            began = time.monotonic()
            found = scenario.inject(d, timing, rng)
            found["took_s"] = round(time.monotonic() - began, 1)
            figures.append(found)
            failure = scenario.expect(found)
            problems.append([failure] if failure else [])
        began = time.monotonic()
        outcome = d.settle()
        settle_s = round(time.monotonic() - began, 1)
    verdict = outcome.verdict
    return [
        Row(
            scenario.name,
            mode,
            found,
            verdict.lost,
            verdict.doubled,
            verdict.ledger_mismatches + verdict.clamped_units,
            verdict.dead_letters_wrong,
            verdict.orders,
            [*own, *verdict.problems],
            round(time.monotonic() - started, 1),
            settle_s,
        )
        for scenario, found, own in zip(scenarios, figures, problems, strict=True)
    ]


def poison_row(mode_note: str = "both") -> Row:
    """Poison input is tests/integration/test_poison.py's run: 24 kinds on every topic the agents consume."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/integration/test_poison.py"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    summary = (done.stdout.strip().splitlines() or [""])[-1]
    problems = [] if done.returncode == 0 else [f"test_poison: {summary}"]
    return Row("poison input", mode_note, {"pytest": summary}, 0, 0, 0, 0, 0, problems, time.monotonic() - started)


def table(rows: list[Row]) -> str:
    header = (
        f"{'scenario':<32} {'mode':<9} {'in flight':>9} {'recover s':>9} {'lost':>5} {'doubled':>7} {'orders':>7}  ok"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        in_flight = row.figures.get("in_flight", "-")
        recover = row.figures.get("recover_s")
        recover_text = f"{recover:.1f}" if isinstance(recover, float) else "-"
        lines.append(
            f"{row.scenario:<32} {row.mode:<9} {in_flight!s:>9} {recover_text:>9} {row.lost:>5} {row.doubled:>7} "
            f"{row.orders:>7}  {'yes' if row.passed else 'NO'}"
        )
        lines.extend(f"    {problem}" for problem in row.problems)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=[*BY_NAME, "poison input"], help="scenarios to run")
    parser.add_argument("--modes", default="kafka,postgres", help="inventory modes, comma-separated")
    parser.add_argument("--short", action="store_true", help="the shortened timings of make test")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    timing = SHORT if args.short else FULL
    modes = [mode for mode in args.modes.split(",") if mode]
    wanted = args.only or [*BY_NAME, "poison input"]
    seed = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="faults-") as work:
        for scenario in SCENARIOS:
            if scenario.name not in wanted:
                continue
            for mode in modes:
                if mode not in scenario.modes:
                    continue
                print(f"faults: {scenario.name} ({mode}) ...", flush=True)
                row = run_sequence([scenario], mode, timing, Path(work), seed)[0]
                rows.append(row)
                print(table([row]).splitlines()[-1 - len(row.problems)], flush=True)
        if "poison input" in wanted:
            rows.append(poison_row())
    print()
    print(table(rows))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "started": seed,
        "timing": asdict(timing),
        "rate_eps": RATE,
        "workers": 2,
        "rows": [{**asdict(row), "passed": row.passed} for row in rows],
    }
    text = json.dumps(report, indent=2, default=str)
    (args.out_dir / f"{seed}.json").write_text(text)
    (args.out_dir / "latest.json").write_text(text)
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
