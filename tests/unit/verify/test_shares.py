"""Share checks within z standard errors, skipped when the sample is too small; exact checks; the output line."""

from __future__ import annotations

import math

import pytest

from app.verify.results import FAIL, PASS, SKIP, CheckResult, Problems, exact, skipped
from app.verify.shares import MIN_EXPECTED, Z, share_check, shares_check, tolerance


def test_the_tolerance_is_z_standard_errors() -> None:
    assert Z == 4.5
    assert tolerance(0.5, 10_000) == pytest.approx(4.5 * 0.005)
    assert tolerance(0.2, 400, z=2.0) == pytest.approx(2.0 * math.sqrt(0.2 * 0.8 / 400))


@pytest.mark.parametrize("p", [0.5, 0.85, 0.06])
def test_a_share_at_the_edge_of_the_tolerance_passes_and_one_beyond_fails(p: float) -> None:
    n = 40_000
    band = tolerance(p, n)
    inside_high, inside_low = math.floor((p + band) * n), math.ceil((p - band) * n)
    assert share_check("s", round(p * n), n, p, "draws").status == PASS
    assert share_check("s", inside_high, n, p, "draws").status == PASS
    assert share_check("s", inside_low, n, p, "draws").status == PASS
    assert share_check("s", inside_high + 1, n, p, "draws").status == FAIL
    assert share_check("s", inside_low - 1, n, p, "draws").status == FAIL


def test_a_share_result_carries_its_figures() -> None:
    result = share_check("payments.share", 850, 1_000, 0.85, "orders paid")
    assert (result.observed, result.expected, result.n) == (0.85, 0.85, 1_000)
    assert result.tolerance == pytest.approx(tolerance(0.85, 1_000))
    assert "850 of 1,000 orders paid" in result.detail


@pytest.mark.parametrize(("hits", "n", "p"), [(0, 0, 0.5), (1, 100, 0.01), (99, 100, 0.99), (3, 9, 0.5)])
def test_too_small_a_sample_is_skipped_not_passed(hits: int, n: int, p: float) -> None:
    result = share_check("s", hits, n, p, "draws")
    assert result.status == SKIP
    assert result.tolerance is None
    assert ("too few" in result.detail) or ("nothing to count" in result.detail)


def test_the_smallest_sample_judged_has_min_expected_hits_and_misses() -> None:
    assert share_check("s", 5, 500, 0.01, "draws").status == PASS  # n p = 5
    assert share_check("s", 4, 499, 0.01, "draws").status == SKIP
    assert MIN_EXPECTED == 5


def test_a_probability_of_zero_or_one_is_exact() -> None:
    assert share_check("s", 0, 10, 0.0, "draws").status == PASS
    assert share_check("s", 1, 10_000, 0.0, "draws").status == FAIL
    assert share_check("s", 10, 10, 1.0, "draws").status == PASS
    assert share_check("s", 9, 10, 1.0, "draws").status == FAIL
    assert share_check("s", 1, 10_000, 0.0, "draws").tolerance == 0.0


def test_a_multinomial_is_judged_per_category_with_normalised_weights() -> None:
    results = shares_check("mix", {"a": 6_000, "b": 3_000, "c": 1_000}, {"a": 6, "b": 3, "c": 1}, "events")
    assert [(result.name, result.status, result.expected) for result in results] == [
        ("mix.a", PASS, 0.6),
        ("mix.b", PASS, 0.3),
        ("mix.c", PASS, 0.1),
    ]
    skewed = shares_check("mix", {"a": 7_000, "b": 2_000, "c": 1_000}, {"a": 6, "b": 3, "c": 1}, "events")
    assert [result.status for result in skewed] == [FAIL, FAIL, PASS]


def test_a_category_without_a_probability_fails_on_its_own() -> None:
    results = shares_check("payments.method", {"CARD": 65, "BITCOIN": 2}, {"CARD": 1.0}, "payments")
    assert results[-1].name == "payments.method.unexpected"
    assert results[-1].status == FAIL
    assert "BITCOIN: 2" in results[-1].detail


def test_an_exact_check_passes_fails_or_has_nothing_to_check() -> None:
    problems = Problems()
    assert exact("x", problems, 10, "payments").status == PASS
    assert exact("x", problems, 0, "payments").status == SKIP
    problems.add("payment of an order not on the orders topic", "o-1")
    failed = exact("x", problems, 10, "payments")
    assert (failed.status, failed.observed, failed.expected, failed.tolerance) == (FAIL, 1, 0, 0)
    assert "payment of an order not on the orders topic: 1 (e.g. o-1)" in failed.detail


def test_problems_keep_a_few_examples_per_reason_and_merge() -> None:
    problems, more = Problems(), Problems()
    for index in range(5):
        problems.add("late", f"r{index}")
    more.add("late", "r9")
    more.add("early")
    problems.merge(more)
    assert problems.counts == {"late": 6, "early": 1}
    assert problems.examples["late"] == ["r0", "r1", "r2"]
    assert problems.summary() == "late: 6 (e.g. r0, r1, r2); early: 1"


def test_a_line_shows_status_name_and_every_figure() -> None:
    line = CheckResult("mix.orders", PASS, 0.6012, 0.6, 0.0349, 4_000, "2,405 of 4,000").line()
    assert line.startswith("PASS  mix.orders")
    assert "observed 0.6012 expected 0.6000 tolerance 0.0349 n=4,000  2,405 of 4,000" in line
    assert skipped("stock.worker", "no worker").line().startswith("SKIP  stock.worker")
    assert "observed - expected - tolerance - n=0  no worker" in skipped("stock.worker", "no worker").line()
