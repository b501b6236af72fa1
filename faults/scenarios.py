"""The faults, each injected into a running deployment under load; each returns its figures.

A scenario's ``inject`` runs once the workers generate every shard (or, with ``before_start``, right after they
were started). The figures every scenario gives: ``in_flight``, orders on the topic that the agents had not
committed when the fault began, and ``recover_s``, the seconds from the fault's start until every worker answers
/health with 200 again, orders are being made and fewer than 5 s of them wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.wire.roles import INVENTORY_CHANGES, ORDERS, PAYMENTS, SHIPMENTS
from faults.harness import Deployment, stack
from tests.harness import http_get
from tests.stock_support import high_watermarks
from tests.support import read_back, registry_client

Figures = dict[str, Any]


@dataclass(frozen=True)
class Timing:
    """How hard and how long: the full suite's, or the shortened one in ``make test``."""

    kills: int
    outage_s: float
    gap_s: tuple[float, float]  # a random pause between kills, and before a fault
    broker_down_s: float


FULL = Timing(kills=20, outage_s=30.0, gap_s=(2.0, 8.0), broker_down_s=5.0)
SHORT = Timing(kills=2, outage_s=8.0, gap_s=(1.0, 4.0), broker_down_s=2.0)


@dataclass(frozen=True)
class Scenario:
    name: str
    inject: Callable[[Deployment, Timing, random.Random], Figures]
    modes: tuple[str, ...] = ("kafka", "postgres")
    #: Run before the workers start; the scenario's ``inject`` then waits for them itself.
    before_start: Callable[[Deployment, Timing], None] | None = None
    #: What the figures must show besides the verdict: a failure's description, or None.
    expect: Callable[[Figures], str | None] = lambda figures: None
    #: Said beside the scenario's row.
    note: str = field(default="")


def worker_kills(d: Deployment, t: Timing, rng: random.Random) -> Figures:
    """SIGKILL a worker at a random moment, restart it on its data directory; ``t.kills`` times, the two in turn."""
    in_flight = []
    for kill in range(t.kills):
        time.sleep(rng.uniform(*t.gap_s))
        member = d.members[kill % len(d.members)]
        in_flight.append(d.in_flight())
        started = time.monotonic()
        member.kill()
        member.start(d.settings)
    recover = d.wait_recovered(started)
    return {"kills": t.kills, "in_flight": max(in_flight), "in_flight_each": in_flight, "recover_s": recover}


def broker_kill(d: Deployment, t: Timing, rng: random.Random) -> Figures:
    """SIGKILL the broker, start it again after ``t.broker_down_s``; the workers ride it out."""
    time.sleep(rng.uniform(*t.gap_s))
    in_flight = d.in_flight()
    started = time.monotonic()
    stack("kill", "kafka")
    time.sleep(t.broker_down_s)
    stack("up")
    return {"in_flight": in_flight, "recover_s": d.wait_recovered(started), "workers_alive": _alive(d)}


def postgres_stop(d: Deployment, t: Timing, rng: random.Random) -> Figures:
    """Postgres stopped for ``t.outage_s``: decisions (postgres mode), the mirror and price writes wait, then resume."""
    time.sleep(rng.uniform(*t.gap_s))
    in_flight = d.in_flight()
    started = time.monotonic()
    stack("stop", "postgres")
    time.sleep(t.outage_s)
    during = d.members[0].healthy()
    stack("up")
    return {
        "in_flight": in_flight,
        "recover_s": d.wait_recovered(started),
        "health_503_during": not during,
        "workers_alive": _alive(d),
    }


def registry_stop(d: Deployment, t: Timing, rng: random.Random) -> Figures:
    """The registry down for ``t.outage_s`` mid-run: nothing good is dead-lettered, generation goes on."""
    time.sleep(rng.uniform(*t.gap_s))
    in_flight = d.in_flight()
    started = time.monotonic()
    made = d.orders_made()
    stack("stop", "registry")
    time.sleep(t.outage_s)
    made_during = d.orders_made() - made
    stack("up")
    return {
        "in_flight": in_flight,
        "recover_s": d.wait_recovered(started),
        "orders_made_while_down": made_during,
        "workers_alive": _alive(d),
    }


def registry_absent_first(d: Deployment, t: Timing) -> None:
    stack("stop", "registry")


def registry_down_at_start(d: Deployment, t: Timing, rng: random.Random) -> Figures:
    """Workers started while the registry is down wait, /health answering 503 naming it; then they generate."""
    deadline = time.monotonic() + 120
    failing: list[str] = []
    while time.monotonic() < deadline:
        try:
            status, body = http_get(d.members[0].url + "/health")
        except (OSError, ValueError):
            time.sleep(0.5)
            continue
        failing = body.get("failing", [])
        if status == 503 and failing == ["registry"]:
            break
        time.sleep(0.5)
    time.sleep(t.outage_s)
    made_before = d.orders_made()
    started = time.monotonic()
    stack("up")
    d.wait_generating()
    return {
        "health_failing": failing,
        "orders_made_before_registry": made_before,
        "in_flight": 0,
        "recover_s": d.wait_recovered(started),
    }


def sigterm_broker_down(d: Deployment, t: Timing, rng: random.Random) -> Figures:
    """SIGTERM to a worker while the broker is down: it exits within 30 s without flooding its log."""
    time.sleep(rng.uniform(*t.gap_s))
    member = d.members[-1]
    in_flight = d.in_flight()
    started = time.monotonic()
    stack("kill", "kafka")
    time.sleep(t.broker_down_s)
    lines_before = len(member.log().splitlines())
    exit_s = member.terminate(timeout=60)
    lines = len(member.log().splitlines()) - lines_before
    assert member.process is not None
    code = member.process.returncode
    stack("up")
    member.start(d.settings)
    return {
        "in_flight": in_flight,
        "exit_s": round(exit_s, 1),
        "exit_status": code,
        "log_lines_while_stopping": lines,
        "recover_s": d.wait_recovered(started),
    }


def fresh_broker_old_state(d: Deployment, t: Timing, rng: random.Random) -> Figures:
    """The stack's Kafka wiped and started again while the workers' data directories keep their RocksDB files."""
    time.sleep(rng.uniform(*t.gap_s))
    in_flight = d.in_flight()
    for member in d.members:
        member.terminate()
    logged = [len(member.log()) for member in d.members]
    stack("wipe-kafka")
    stack("up")
    started = time.monotonic()
    d.start()
    d.wait_generating()
    recover = d.wait_recovered(started)
    fresh_logs = [member.log()[offset:] for member, offset in zip(d.members, logged, strict=True)]
    return {
        "in_flight": in_flight,
        "recover_s": recover,
        "state_discarded": sum("local table state" in log and "discarded" in log for log in fresh_logs),
        "consistency_errors": sum(log.count("ConsistencyError") for log in fresh_logs),
    }


def whole_stack_restart(d: Deployment, t: Timing, rng: random.Random) -> Figures:
    """``stack.sh down && stack.sh up`` with the workers stopped: every record written before decodes after, with the
    same schema ids; the workers then carry on."""
    time.sleep(rng.uniform(*t.gap_s))
    in_flight = d.in_flight()
    for member in d.members:
        member.terminate()
    topics = [d.roles[role] for role in (ORDERS, PAYMENTS, SHIPMENTS, INVENTORY_CHANGES)]
    ids_before = _schema_ids(topics)
    expected = sum(sum(high_watermarks(topic).values()) for topic in topics)
    before = _decoded(read_back(topics, expected, timeout=300))
    stack("down")
    stack("up")
    ids_after = _schema_ids(topics)
    records = read_back(topics, expected, timeout=300)
    after = _decoded(records)
    # Deliberately bad records do not decode before or after; every other one must, to the same value.
    undecodable = sum(1 for place, value in before.items() if after.get(place) != value)
    started = time.monotonic()
    d.start()
    d.wait_generating()
    return {
        "in_flight": in_flight,
        "records_read_after": len(records),
        "records_before": expected,
        "decoded_before": len(before),
        "undecodable_after": undecodable,
        "schema_ids_kept": ids_before == ids_after,
        "recover_s": d.wait_recovered(started),
    }


def _decoded(records: list) -> dict[tuple[str, int, int], object]:
    """The value of every record that decodes, by (topic, partition, offset)."""
    return {(r.topic, r.partition, r.offset): r.value for r in records if r.value is not None}


def _schema_ids(topics: list[str]) -> dict[str, int]:
    registry = registry_client()
    return {topic: registry.get_latest_version(f"{topic}-value").schema_id for topic in topics}


def _alive(d: Deployment) -> int:
    return sum(member.running() for member in d.members)


#: Most log lines a worker may write while it stops with the broker down: not a flood. The stop itself writes about
#: 45 (Faust's services, the tables, what it gave up) and the Kafka clients a few first warnings, each repeated at most
#: once in 30 s (tests/integration/test_shutdown.py allows as much); a flood was 60 to 120 lines a second.
QUIET_STOP_LINES = 200


def _all_alive(figures: Figures) -> str | None:
    return None if figures.get("workers_alive", 2) == 2 else f"{figures['workers_alive']} of 2 workers alive"


def _generated_on(figures: Figures) -> str | None:
    return _all_alive(figures) or (None if figures["orders_made_while_down"] > 0 else "generation stopped")


def _waited(figures: Figures) -> str | None:
    if figures["health_failing"] != ["registry"]:
        return f"/health named {figures['health_failing']}, not the registry"
    return None if figures["orders_made_before_registry"] == 0 else "orders made without the registry"


def _stopped_quietly(figures: Figures) -> str | None:
    if figures["exit_s"] > 30:
        return f"took {figures['exit_s']} s to exit"
    if figures["log_lines_while_stopping"] > QUIET_STOP_LINES:
        return f"{figures['log_lines_while_stopping']} log lines while stopping"
    return None


def _rebuilt(figures: Figures) -> str | None:
    if figures["consistency_errors"]:
        return f"{figures['consistency_errors']} ConsistencyError(s)"
    return None if figures["state_discarded"] >= 1 else "no worker said it discarded its local state"


def _kept_schemas(figures: Figures) -> str | None:
    if not figures["schema_ids_kept"]:
        return "schema ids changed"
    if figures["undecodable_after"] or figures["records_read_after"] != figures["records_before"]:
        read, before = figures["records_read_after"], figures["records_before"]
        return f"{figures['undecodable_after']} undecodable, {read} of {before} read"
    return None


SCENARIOS = (
    Scenario("worker SIGKILL", worker_kills),
    Scenario("broker SIGKILL", broker_kill, expect=_all_alive),
    Scenario("postgres stopped", postgres_stop, expect=_all_alive),
    Scenario("registry down mid-run", registry_stop, expect=_generated_on),
    Scenario("registry down at start", registry_down_at_start, before_start=registry_absent_first, expect=_waited),
    Scenario("SIGTERM, broker down", sigterm_broker_down, expect=_stopped_quietly),
    Scenario(
        "fresh broker, old local state",
        fresh_broker_old_state,
        modes=("kafka",),
        expect=_rebuilt,
        note="judged on what the new cluster holds",
    ),
    Scenario("whole stack restart", whole_stack_restart, expect=_kept_schemas),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
