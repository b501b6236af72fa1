"""The last minutes of a worker, for its page: cumulative counts sampled once a second, and the rates they give.

A sample copies counters that already exist (the generator's meters, the agents' counts, the ledger's backlog),
so nothing is added to the generator's path; rates are differences of cumulative counts over the time between
samples. Pure: the caller takes the samples (a Faust timer) and passes the clocks' readings in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from app.stats import EmissionStats
from app.wire.roles import INVENTORY_CHANGES, PAYMENTS, SHIPMENTS

#: How far back the history reaches, in samples of one a second.
WINDOW_SECONDS = 600
#: The agents' counter of every dead letter (agents/intake.py); reasons, when counted, are keys beginning with it.
DEAD_LETTERS = "dead letters"
_DEAD_LETTER_PREFIX = "dead letter"
#: What the agents wrote to each derived topic, by the topic's role: the sum of these counters of
#: ``EmissionStats.agents`` (agents/orders.py, app/inventory/stockroom.py).
DERIVED_COUNTERS: dict[str, tuple[str, ...]] = {
    PAYMENTS: ("payments",),
    SHIPMENTS: ("shipped",),
    INVENTORY_CHANGES: (
        "shipped",  # each shipment's SALE
        "restock applied",
        "return applied",
        "damage applied",
        "opening balances",
        "restocks arrived",
        "returns arrived",
    ),
}


@dataclass(frozen=True)
class Sample:
    """What a worker had done by one moment: every figure cumulative since it started, except the gauges."""

    wall: float  # seconds since the epoch: where the sample sits on the page's time axis
    monotonic: float  # seconds of a monotonic clock: what rates are divided by
    target_eps: float  # the generator's target at that moment (a gauge)
    backlog: int  # orders waiting for stock (a gauge)
    emitted: Mapping[str, int]  # by topic, events the generator emitted
    derived: Mapping[str, int]  # by derived topic, records the agents wrote
    dead_letters: Mapping[str, int]  # by reason, as far as the agents count reasons
    dead_letter_total: int = 0


def dead_letter_reasons(agents: Mapping[str, int]) -> dict[str, int]:
    """Dead letters by reason: the agents' counters named ``dead letter...`` other than the total, the prefix cut."""
    reasons: dict[str, int] = {}
    for key, count in agents.items():
        if key.lower().startswith(_DEAD_LETTER_PREFIX) and key != DEAD_LETTERS:
            reason = key[len(_DEAD_LETTER_PREFIX) :].removeprefix("s").strip(" :-") or key
            reasons[reason] = reasons.get(reason, 0) + count
    return reasons


def derived_counts(agents: Mapping[str, int], topics: Mapping[str, str]) -> dict[str, int]:
    """By topic name (``topics``: role -> name), what the agents wrote to it; a topic none of whose counters
    exists yet is left out (not counted, or nothing done)."""
    counts = {}
    for role, name in topics.items():
        keys = DERIVED_COUNTERS.get(role, ())
        if any(key in agents for key in keys):
            counts[name] = sum(agents.get(key, 0) for key in keys)
    return counts


def sample_of(
    stats: EmissionStats,
    derived_topics: Mapping[str, str],
    wall: float,
    monotonic: float,
    reasons: Mapping[str, int] | None = None,
) -> Sample:
    """A sample of ``stats`` at (``wall``, ``monotonic``); ``derived_topics``: role -> name of the derived topics;
    ``reasons``: dead letters by reason where they are counted elsewhere (by default, read from ``stats.agents``)."""
    reasons = dict(reasons) if reasons is not None else dead_letter_reasons(stats.agents)
    return Sample(
        wall=wall,
        monotonic=monotonic,
        target_eps=stats.target_eps,
        backlog=int(stats.ledger.get("backlog", 0)),
        emitted={topic: meter.total for topic, meter in stats.meters.items()},
        derived=derived_counts(stats.agents, derived_topics),
        dead_letters=reasons,
        dead_letter_total=stats.agents.get(DEAD_LETTERS, sum(reasons.values())),
    )


def rate(count_then: int, count_now: int, seconds: float) -> float:
    """Events per second between two cumulative counts ``seconds`` apart (0 for no time; never negative)."""
    return max(0, count_now - count_then) / seconds if seconds > 0 else 0.0


def points(first: int, held: int, step: int) -> list[int]:
    """Indices of the ``held`` samples, the first of which was the ``first`` taken (0-based), that a chart of one
    point per ``step`` samples uses: every sample whose number is a multiple of ``step``, and the newest.

    Numbers, not positions in the buffer, fix where points fall: a refresh moves only the newest point.
    """
    if step < 1:
        msg = f"step: expected a whole number >= 1, got {step}"
        raise ValueError(msg)
    chosen = [index for index in range(held) if (first + index) % step == 0]
    if held and (not chosen or chosen[-1] != held - 1):
        chosen.append(held - 1)
    return chosen


def series_names(samples: Sequence[Sample]) -> tuple[list[str], list[str]]:
    """Every topic the generator emitted to and every derived topic counted in ``samples``, each sorted."""
    emitted = sorted({name for sample in samples for name in sample.emitted})
    derived = sorted({name for sample in samples for name in sample.derived})
    return emitted, derived


def derived_label(topic: str) -> str:
    """A derived topic's series name, apart from the generator's series of the same topic."""
    return f"{topic} (agents)"


class History:
    """The last ``seconds`` samples, oldest first, and the rates between them."""

    def __init__(self, seconds: int = WINDOW_SECONDS) -> None:
        self.seconds = seconds
        self._samples: deque[Sample] = deque(maxlen=seconds + 1)  # n + 1 samples span n seconds
        self._taken = 0  # samples kept since the start, the oldest gone included

    def add(self, sample: Sample) -> bool:
        """Keep ``sample``, the oldest going once full; False (ignored) when it is not later than the last one."""
        if self._samples and sample.monotonic <= self._samples[-1].monotonic:
            return False
        self._samples.append(sample)
        self._taken += 1
        return True

    def samples(self) -> list[Sample]:
        """The samples held, oldest first."""
        return list(self._samples)

    def report(self, step: int, derived_topics: Sequence[str] = ()) -> dict[str, Any]:
        """The JSON of ``GET /stats/history/``: one point per ``step`` samples, each the mean over the samples since
        the point before (see docs/operations.md, Web views). ``derived_topics``: the derived topics' names, so that
        those with no counter show in ``not_counted``."""
        samples = self.samples()
        emitted, derived = series_names(samples)
        names = emitted + [derived_label(name) for name in derived]
        counts = [flat_counts(sample) for sample in samples]
        chosen = points(self._taken - len(samples), len(samples), step)
        spans = list(pairwise(chosen))  # (older, newer) sample indices of each point
        seconds = [samples[newer].monotonic - samples[older].monotonic for older, newer in spans]
        rates = {
            name: [
                round(rate(counts[older].get(name, 0), counts[newer].get(name, 0), elapsed), 3)
                for (older, newer), elapsed in zip(spans, seconds, strict=True)
            ]
            for name in names
        }
        newest = samples[-1] if samples else None
        return {
            "interval_s": 1,
            "step_s": step,
            "window_s": self.seconds,
            "start": round(samples[chosen[0]].wall * 1000) if chosen else None,
            "times": [round(samples[newer].wall * 1000) for _, newer in spans],
            "target_eps": [round(mean_target(samples[older + 1 : newer + 1]), 3) for older, newer in spans],
            "generated_eps": [round(sum(rates[name][i] for name in emitted), 3) for i in range(len(spans))],
            "rates": rates,
            "series": [{"name": name, "source": "generator" if name in emitted else "agents"} for name in names],
            "backlog": [samples[newer].backlog for _, newer in spans],
            "totals": {name: counts[-1].get(name, 0) for name in names} if counts else {},
            "since": {name: counts[0].get(name, 0) for name in names} if counts else {},
            "dead_letters": {
                "total": newest.dead_letter_total if newest is not None else 0,
                "by_reason": dict(newest.dead_letters) if newest is not None else {},
            },
            "not_counted": sorted(set(derived_topics) - set(derived)),
        }


def flat_counts(sample: Sample) -> dict[str, int]:
    """A sample's cumulative counts by series name: the generator's topics, then the derived topics' labels."""
    return {**sample.emitted, **{derived_label(name): count for name, count in sample.derived.items()}}


def mean_target(samples: Sequence[Sample]) -> float:
    """The mean target over ``samples`` (0 for none)."""
    return sum(sample.target_eps for sample in samples) / len(samples) if samples else 0.0
