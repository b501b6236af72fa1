"""The fault suite, shortened (faults/scenarios.py's SHORT timings): every scenario of ``make faults`` once, the
compatible ones one after another in one deployment per mode, judged once at the end from the topics and Postgres.

kafka mode: the registry down when the workers start (two workers joining a fresh group together: where Faust
committed past records it never handed over), 2 worker SIGKILLs, the broker SIGKILLed, the registry down 8 s mid-run,
then the stack's Kafka wiped under the workers' RocksDB state (last: the topics then hold only what the new cluster
got). postgres mode: the registry down when the workers start, Postgres stopped 8 s, SIGTERM while the broker is down,
the whole stack stopped and started. ``make faults`` runs each scenario on its own, in both modes, with the full
timings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faults.run import run_sequence
from faults.scenarios import BY_NAME, SHORT

pytestmark = pytest.mark.integration

#: Half the full suite's load: the run is judged in full, and half as many records are read back and checked.
RATE = 1000.0
PLANS = {
    "kafka": [
        "registry down at start",
        "worker SIGKILL",
        "broker SIGKILL",
        "registry down mid-run",
        "fresh broker, old local state",
    ],
    "postgres": ["registry down at start", "postgres stopped", "SIGTERM, broker down", "whole stack restart"],
}


def test_every_scenario_is_covered_by_a_plan() -> None:
    assert {name for names in PLANS.values() for name in names} == set(BY_NAME)


@pytest.mark.parametrize("mode", sorted(PLANS))
def test_faults_lose_and_double_nothing(mode: str, tmp_path: Path) -> None:
    rows = run_sequence([BY_NAME[name] for name in PLANS[mode]], mode, SHORT, tmp_path, "make-test", rate=RATE)
    print(
        f"\nFAULTS {mode}: " + "; ".join(f"{row.scenario} {row.figures}" for row in rows),
        f"settle {rows[0].settle_s} s",
    )
    assert rows[0].orders > 500  # the verdict judged a real load
    for row in rows:
        assert row.passed, (row.scenario, row.figures, row.problems)
