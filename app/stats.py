"""What the generator has emitted, per topic, and at what rate: the numbers behind ``GET /stats/``."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field


@dataclass
class RateMeter:
    """Events per whole second of a monotonic clock, kept for ``window`` seconds."""

    window: int = 60
    total: int = 0
    _seconds: deque[list[int]] = field(default_factory=deque)

    def add(self, count: int, now: float) -> None:
        """Count ``count`` events at time ``now`` (seconds)."""
        second = int(now)
        if self._seconds and self._seconds[-1][0] == second:
            self._seconds[-1][1] += count
        else:
            self._seconds.append([second, count])
        self.total += count
        while self._seconds and self._seconds[0][0] <= second - self.window:
            self._seconds.popleft()

    def rate(self, now: float, span: int) -> float:
        """Mean events per second over the last ``span`` complete seconds before ``now``."""
        span = min(span, self.window)
        current = int(now)
        counted = sum(count for second, count in self._seconds if current - span <= second < current)
        return counted / span


@dataclass
class EmissionStats:
    """Per-topic meters plus the generator's own state: target, diurnal factor, backpressure, faults."""

    meters: dict[str, RateMeter] = field(default_factory=dict)
    bad_records: Counter[str] = field(default_factory=Counter)
    late_events: int = 0
    #: Second copies of records sent twice on purpose (P_DUPLICATE), by topic.
    duplicates: Counter[str] = field(default_factory=Counter)
    #: What the fulfilment agents did: shipped, backordered, dead letters, ...
    agents: Counter[str] = field(default_factory=Counter)
    #: The stock ledger as this worker holds it: orders waiting for stock, items scheduled.
    ledger: dict[str, int] = field(default_factory=dict)
    #: This worker's share of the target: TARGET_EPS x the diurnal factor x shards held / GENERATION_SHARDS.
    target_eps: float = 0.0
    #: The deployment's target: TARGET_EPS x the diurnal factor.
    group_target_eps: float = 0.0
    #: The generation shards this worker holds.
    shards: list[int] = field(default_factory=list)
    diurnal_factor: float = 1.0
    backpressure_waits: int = 0
    pending: int = 0
    shortfall: int = 0
    state: str = "starting"
    #: The simulated clock: where it stands (epoch ms, 0 before the first tick) and whether it is backfilling.
    simulated_ms: int = 0
    backfilling: bool = False

    def add(self, topic: str, count: int, now: float) -> None:
        """Count events emitted on ``topic``."""
        meter = self.meters.get(topic)
        if meter is None:
            meter = self.meters[topic] = RateMeter()
        meter.add(count, now)

    @property
    def emitted(self) -> int:
        """Events emitted on all topics."""
        return sum(meter.total for meter in self.meters.values())

    def report(self, now: float) -> dict[str, object]:
        """A JSON-ready summary at time ``now``."""
        return {
            "state": self.state,
            "target_eps": round(self.target_eps, 3),
            "group_target_eps": round(self.group_target_eps, 3),
            "shards": list(self.shards),
            "diurnal_factor": round(self.diurnal_factor, 4),
            "simulated_time": self.simulated_ms,
            "backfilling": self.backfilling,
            "emitted": self.emitted,
            "rate_10s": round(sum(meter.rate(now, 10) for meter in self.meters.values()), 2),
            "rate_60s": round(sum(meter.rate(now, 60) for meter in self.meters.values()), 2),
            "late_events": self.late_events,
            "bad_records": dict(self.bad_records),
            "duplicates": dict(self.duplicates),
            "backpressure_waits": self.backpressure_waits,
            "pending": self.pending,
            "shortfall": self.shortfall,
            "agents": dict(self.agents),
            "ledger": dict(self.ledger),
            "topics": {
                topic: {"emitted": meter.total, "rate_10s": meter.rate(now, 10), "rate_60s": meter.rate(now, 60)}
                for topic, meter in sorted(self.meters.items())
            },
        }
