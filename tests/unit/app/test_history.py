"""The page's history, pure: the ring buffer of samples, the rates from differences of cumulative counts, what a
sample reads of EmissionStats; and the page's other figures: the lowest stock and the sampling timer."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from app.history import (
    DEAD_LETTERS,
    History,
    Sample,
    dead_letter_reasons,
    derived_counts,
    points,
    rate,
    sample_of,
)
from app.stats import EmissionStats
from app.web.shaping import MAX_LOW_STOCK, MAX_PAGE_SIZE, BadParameter, Page, lowest_available, parse_step
from app.web.stock_sources import LowestStock
from app.web.views import record_history

ROOT = Path(__file__).resolve().parents[3]
DERIVED = {"payments": "payments.v1", "shipments": "shipments.v1", "inventory_changes": "inventory-changes.v1"}


def _sample(second: float, orders: int = 0, shipped: int = 0, target: float = 0.0, backlog: int = 0) -> Sample:
    return Sample(
        wall=1_000_000.0 + second,
        monotonic=50.0 + second,
        target_eps=target,
        backlog=backlog,
        emitted={"orders.v1": orders},
        derived={"shipments.v1": shipped},
        dead_letters={},
    )


def _history(samples: list[Sample], seconds: int = 600) -> History:
    history = History(seconds)
    for sample in samples:
        assert history.add(sample)
    return history


# ----- the arithmetic


def test_a_rate_is_the_difference_of_counts_over_the_time_between() -> None:
    assert rate(100, 160, 2.0) == 30.0
    assert rate(100, 100, 1.0) == 0.0
    assert rate(5, 5, 0.0) == 0.0  # no time: no rate, not a division by zero
    assert rate(100, 40, 1.0) == 0.0  # a count that went back (never expected) gives no negative rate


def test_points_fall_on_multiples_of_the_step_and_the_newest() -> None:
    assert points(0, 11, 5) == [0, 5, 10]
    assert points(0, 12, 5) == [0, 5, 10, 11]
    assert points(3, 10, 5) == [2, 7, 9]  # samples 3..12 were taken: numbers 5 and 10 sit at indices 2 and 7
    assert points(0, 1, 5) == [0]
    assert points(0, 0, 5) == []
    assert points(0, 4, 1) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="step"):
        points(0, 4, 0)


def test_a_constant_rate_gives_that_rate_at_every_point() -> None:
    samples = [_sample(s, orders=40 * s, shipped=10 * s, target=45.0, backlog=s % 3) for s in range(21)]
    report = _history(samples).report(5)
    assert report["times"] == [round(samples[i].wall * 1000) for i in (5, 10, 15, 20)]
    assert report["rates"] == {"orders.v1": [40.0] * 4, "shipments.v1 (agents)": [10.0] * 4}
    assert report["generated_eps"] == [40.0] * 4  # the generator's topics only
    assert report["target_eps"] == [45.0] * 4
    assert report["backlog"] == [samples[i].backlog for i in (5, 10, 15, 20)]
    assert report["series"] == [
        {"name": "orders.v1", "source": "generator"},
        {"name": "shipments.v1 (agents)", "source": "agents"},
    ]
    assert report["totals"] == {"orders.v1": 800, "shipments.v1 (agents)": 200}
    assert report["since"] == {"orders.v1": 0, "shipments.v1 (agents)": 0}


def test_rates_integrate_back_to_the_counts_whatever_the_step_and_gaps() -> None:
    """A timer that fires late or skips a second: rates are divided by the real time between samples."""
    seconds = [0, 1, 2, 3.5, 4, 6, 7, 8.2, 9, 10, 13, 14]
    counts = [0, 7, 7, 30, 31, 90, 90, 120, 121, 150, 260, 261]
    samples = [_sample(s, orders=n, target=s) for s, n in zip(seconds, counts, strict=True)]
    for step in (1, 2, 3, 5, 60):
        report = _history(samples).report(step)
        times = [report["start"], *report["times"]]
        spans = [(later - earlier) / 1000 for earlier, later in pairwise(times)]
        integral = sum(r * span for r, span in zip(report["rates"]["orders.v1"], spans, strict=True))
        assert integral == pytest.approx(261, abs=0.01), step
        assert report["totals"]["orders.v1"] - report["since"]["orders.v1"] == 261


def test_the_target_of_a_point_is_its_mean_over_the_samples_since_the_point_before() -> None:
    targets = [0, 10, 20, 30, 40, 50, 60]
    samples = [_sample(s, target=t) for s, t in enumerate(targets)]
    assert _history(samples).report(3)["target_eps"] == [20.0, 50.0]  # mean of 10..30, of 40..60


def test_a_series_appears_when_its_counter_does_and_counts_from_zero_before() -> None:
    first = [_sample(s, orders=s) for s in range(3)]
    later = [
        Sample(1_000_000.0 + s, 50.0 + s, 0.0, 0, {"orders.v1": s, "customer-interactions.v1": 5 * (s - 2)}, {}, {})
        for s in range(3, 6)
    ]
    report = _history(first + later).report(1)
    assert report["rates"]["customer-interactions.v1"] == [0.0, 0.0, 5.0, 5.0, 5.0]
    assert report["generated_eps"] == [1.0, 1.0, 6.0, 6.0, 6.0]


def test_an_empty_or_single_sample_history_has_no_points() -> None:
    assert _history([]).report(5)["times"] == []
    assert _history([]).report(5)["totals"] == {}
    assert _history([]).report(5)["start"] is None
    single = _history([_sample(0, orders=3)]).report(5)
    assert (single["times"], single["rates"]["orders.v1"], single["totals"]["orders.v1"]) == ([], [], 3)


# ----- the ring buffer


def test_the_buffer_keeps_the_last_window_of_seconds() -> None:
    history = _history([_sample(s, orders=s) for s in range(1000)], seconds=600)
    kept = history.samples()
    assert len(kept) == 601  # 601 samples span 600 s
    assert (kept[0].monotonic, kept[-1].monotonic) == (50.0 + 399, 50.0 + 999)
    report = history.report(5)
    assert len(report["times"]) == 120
    assert report["since"] == {"orders.v1": 399, "shipments.v1 (agents)": 0}


def test_points_stay_put_as_samples_come_only_the_newest_moves() -> None:
    history = _history([_sample(s, orders=s * s) for s in range(700)], seconds=600)
    before = history.report(5)  # samples 99..699: points at 105, 110, ..., 695 and the newest, 699
    for s in range(700, 705):
        history.add(_sample(s, orders=s * s))
    after = history.report(5)  # samples 104..704: points at 110, ..., 700 and 704
    assert after["times"][:-2] == before["times"][1:-1]  # the oldest went, the rest did not move
    assert after["rates"]["orders.v1"][:-2] == before["rates"]["orders.v1"][1:-1]


def test_a_sample_not_later_than_the_last_is_ignored() -> None:
    history = _history([_sample(0), _sample(1)])
    assert not history.add(_sample(1, orders=99))
    assert not history.add(_sample(0.5))
    assert [sample.emitted["orders.v1"] for sample in history.samples()] == [0, 0]


# ----- what a sample reads


def _stats() -> EmissionStats:
    stats = EmissionStats(target_eps=120.0, ledger={"backlog": 7, "scheduled": 3})
    stats.add("orders.v1", 50, now=10.0)
    stats.add("orders.v1", 25, now=11.0)
    stats.add("customer-interactions.v1", 200, now=11.0)
    stats.agents.update(
        {
            "shipped": 40,
            "restock applied": 3,
            "return applied": 1,
            "damage applied": 2,
            "opening balances": 100,
            "restocks arrived": 4,
            "returns arrived": 5,
            "backordered": 9,
            DEAD_LETTERS: 6,
        }
    )
    return stats


def test_a_sample_copies_the_counters_that_exist() -> None:
    sample = sample_of(_stats(), DERIVED, wall=1_700_000_000.5, monotonic=12.0)
    assert (sample.wall, sample.monotonic, sample.target_eps, sample.backlog) == (1_700_000_000.5, 12.0, 120.0, 7)
    assert sample.emitted == {"orders.v1": 75, "customer-interactions.v1": 200}
    # every record the stock agent writes to inventory-changes: SALEs, applied changes, openings, arrivals
    assert sample.derived == {"shipments.v1": 40, "inventory-changes.v1": 40 + 3 + 1 + 2 + 100 + 4 + 5}
    assert sample.dead_letter_total == 6
    assert sample.dead_letters == {}


def test_a_derived_topic_without_its_counter_yet_is_reported_as_not_counted() -> None:
    stats = _stats()
    history = _history([sample_of(stats, DERIVED, 1.0, 1.0), sample_of(stats, DERIVED, 2.0, 2.0)])
    report = history.report(1, tuple(DERIVED.values()))
    assert report["not_counted"] == ["payments.v1"]
    assert "payments.v1 (agents)" not in report["rates"]


def test_a_payments_counter_would_be_drawn() -> None:
    assert derived_counts({"payments": 12}, DERIVED) == {"payments.v1": 12}
    assert derived_counts({}, DERIVED) == {}  # no agents here: nothing derived, nothing drawn


def test_dead_letters_by_reason_are_the_counters_named_after_them() -> None:
    agents = Counter({DEAD_LETTERS: 9, "dead letters: undecodable": 4, "dead letter - bad_key": 2, "shipped": 3})
    assert dead_letter_reasons(agents) == {"undecodable": 4, "bad_key": 2}
    assert dead_letter_reasons({DEAD_LETTERS: 9}) == {}
    stats = EmissionStats(agents=agents)
    sample = sample_of(stats, DERIVED, 1.0, 1.0)
    assert (sample.dead_letter_total, dict(sample.dead_letters)) == (9, {"undecodable": 4, "bad_key": 2})
    report = _history([sample]).report(5)
    assert report["dead_letters"] == {"total": 9, "by_reason": {"undecodable": 4, "bad_key": 2}}


def test_reasons_counted_elsewhere_can_be_handed_in() -> None:
    stats = EmissionStats(agents=Counter({DEAD_LETTERS: 3}))
    sample = sample_of(stats, DERIVED, 1.0, 1.0, reasons={"undecodable": 3})
    assert (sample.dead_letter_total, dict(sample.dead_letters)) == (3, {"undecodable": 3})


def test_the_history_imports_no_io_library() -> None:
    probe = "import sys, app.history; print(' '.join(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, cwd=ROOT)
    loaded = set(run.stdout.split())
    assert not loaded & {"faust", "confluent_kafka", "aiopg", "psycopg2", "aiohttp", "mode", "aiokafka"}


# ----- the timer that takes the samples


class TimerApp:
    """A stand-in for the Faust app that keeps the timers and pages registered."""

    def __init__(self, settings: Any = None) -> None:
        self.timers: list[tuple[float, str, Callable[[], Any]]] = []
        self.datagen_settings = settings

    def timer(self, interval: float, name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        def register(fun: Callable[[], Any]) -> Callable[[], Any]:
            self.timers.append((interval, name, fun))
            return fun

        return register


def test_a_timer_samples_the_stats_once_a_second() -> None:
    topics = {**DERIVED, "orders": "o.x", "shipments": "s.x"}
    app = TimerApp(SimpleNamespace(topics=lambda: topics))
    stats = _stats()
    history, derived = record_history(app, stats)  # type: ignore[arg-type]
    assert derived == ("payments.v1", "s.x", "inventory-changes.v1")
    [(interval, name, sample)] = app.timers
    assert (interval, name) == (1.0, "page-history")
    asyncio.run(sample())
    stats.add("orders.v1", 10, now=12.0)
    asyncio.run(sample())
    first, second = history.samples()
    assert second.emitted["orders.v1"] - first.emitted["orders.v1"] == 10
    assert first.derived["s.x"] == 40


def test_an_app_without_timers_gets_a_history_that_stays_empty() -> None:
    history, derived = record_history(SimpleNamespace(), EmissionStats())  # type: ignore[arg-type]
    assert history.samples() == []
    assert derived == ("payments", "shipments", "inventory_changes")  # no settings: the roles name them


@pytest.mark.parametrize("step", ["0", "61", "x", "-1", "", "2.5"])
def test_a_bad_step_is_refused_by_name(step: str) -> None:
    with pytest.raises(BadParameter, match=r"^step: expected a whole number >= 1 and <= 60"):
        parse_step({"step": step})


def test_the_step_is_five_seconds_unless_asked() -> None:
    assert (parse_step({}), parse_step({"step": "1"}), parse_step({"step": "60"})) == (5, 1, 60)


# ----- the lowest stock


def _item(product_id: int, available: int) -> dict[str, Any]:
    return {"product_id": product_id, "sku": f"SKU-{product_id}", "available": available, "on_hand": available}


def test_the_lowest_are_the_least_available_by_product_id_among_equals() -> None:
    items = [_item(1, 5), _item(2, 0), _item(3, -1), _item(4, 0), _item(5, 9)]
    assert [item["product_id"] for item in lowest_available(items, 3)] == [3, 2, 4]
    assert lowest_available(items, 10) == sorted(items, key=lambda item: (item["available"], item["product_id"]))


class Pages:
    """A stand-in stock source that counts the pages read."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.read: list[Page] = []

    async def listing(self, page: Page) -> dict[str, Any]:
        self.read.append(page)
        return page.body(page.of(self.items), len(self.items))


def test_the_lowest_stock_reads_every_page_and_keeps_only_the_lowest() -> None:
    items = [_item(product_id, (product_id * 7919) % 1201 - 3) for product_id in range(1, 1202)]
    source = Pages(items)
    body = asyncio.run(LowestStock(source).lowest(10))  # type: ignore[arg-type]
    assert body == {"items": lowest_available(items, 10), "products": 1201}
    assert source.read == [Page(1, MAX_PAGE_SIZE), Page(2, MAX_PAGE_SIZE), Page(3, MAX_PAGE_SIZE)]
    assert len(asyncio.run(LowestStock(source).lowest(1000))["items"]) == MAX_LOW_STOCK  # type: ignore[arg-type]


def test_the_lowest_stock_is_read_again_only_after_its_interval() -> None:
    now = [100.0]
    source = Pages([_item(1, 5), _item(2, 3)])
    lowest = LowestStock(source, seconds=5.0, clock=lambda: now[0])  # type: ignore[arg-type]

    async def ask() -> list[int]:
        return [item["product_id"] for item in (await lowest.lowest(10))["items"]]

    assert asyncio.run(ask()) == [2, 1]
    source.items = [_item(1, 0), _item(2, 3)]
    now[0] = 104.9
    assert asyncio.run(ask()) == [2, 1]  # within the interval: as read
    now[0] = 105.0
    assert asyncio.run(ask()) == [1, 2]
    assert len(source.read) == 2
