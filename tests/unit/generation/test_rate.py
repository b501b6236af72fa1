"""The diurnal curve and the token bucket: exact long-run rates, give-back, capacity, rate changes."""

from __future__ import annotations

import random
from datetime import UTC, timedelta, timezone

import pytest

from app.generation import GenerationError, TokenBucket, diurnal_factor, local_hour


def test_diurnal_trough_at_4_and_peak_at_16() -> None:
    assert diurnal_factor(4.0) == pytest.approx(0.4)
    assert diurnal_factor(16.0) == pytest.approx(1.4)
    grid = [diurnal_factor(minute / 60.0) for minute in range(24 * 60)]
    assert min(grid) == pytest.approx(0.4)
    assert max(grid) == pytest.approx(1.4)
    assert sum(grid) / len(grid) == pytest.approx(0.9)


def test_diurnal_is_smooth_and_24_hour_periodic() -> None:
    for minute in range(0, 24 * 60, 7):
        hour = minute / 60.0
        assert diurnal_factor(hour + 24.0) == pytest.approx(diurnal_factor(hour))
        assert diurnal_factor(hour - 24.0) == pytest.approx(diurnal_factor(hour))
        # The slope is at most 0.5 * 2 pi / 24 per hour, so one minute moves the factor by less than 0.0022.
        assert abs(diurnal_factor(hour + 1 / 60) - diurnal_factor(hour)) < 0.0022


def test_local_hour_follows_the_zone() -> None:
    assert local_hour(0, UTC) == 0.0
    assert local_hour(90 * 60_000, UTC) == 1.5
    assert local_hour(0, timezone(timedelta(hours=-5))) == 19.0


@pytest.mark.parametrize("rate", [10.0, 1_000.0, 10_000.0])
def test_bucket_gives_exactly_the_rate_over_a_minute(rate: float) -> None:
    jitter = random.Random(int(rate))
    now = 1_000.0
    bucket = TokenBucket(rate, capacity=max(1.0, rate), now=now)
    taken = 0
    while now < 1_060.0:
        now = min(1_060.0, now + 0.05 + jitter.uniform(-0.025, 0.025))
        taken += bucket.take(now)
    assert abs(taken - rate * 60.0) <= 1
    assert bucket.discarded == 0.0


def test_bucket_starts_empty_and_carries_fractions() -> None:
    bucket = TokenBucket(rate=3.0, capacity=10.0, now=0.0)
    assert bucket.take(0.0) == 0
    assert [bucket.take(t / 10) for t in range(1, 11)] == [0, 0, 0, 1, 0, 0, 1, 0, 0, 1]


def test_given_back_events_go_out_later() -> None:
    bucket = TokenBucket(rate=100.0, capacity=100.0, now=0.0)
    assert bucket.take(0.5) == 50
    bucket.give_back(30)  # the producer's queue was full for 30 of them
    assert bucket.take(0.5) == 30
    assert bucket.take(1.0) == 50
    assert bucket.discarded == 0.0


def test_backpressure_loses_nothing_while_the_bucket_has_room() -> None:
    rng = random.Random(3)
    bucket = TokenBucket(rate=1_000.0, capacity=1_000.0, now=0.0)
    sent = 0
    for tick in range(1, 1_201):
        allowed = bucket.take(tick * 0.05)
        refused = rng.randrange(allowed + 1) if rng.random() < 0.2 else 0
        bucket.give_back(refused)
        sent += allowed - refused
    assert sent + bucket.tokens == pytest.approx(1_000.0 * 60.0)


def test_limit_leaves_the_rest_for_later() -> None:
    bucket = TokenBucket(rate=100.0, capacity=100.0, now=0.0)
    assert bucket.take(1.0, limit=40) == 40
    assert bucket.take(1.0) == 60
    assert bucket.take(1.0, limit=0) == 0


def test_a_stall_longer_than_the_capacity_shows_as_discarded() -> None:
    bucket = TokenBucket(rate=100.0, capacity=50.0, now=0.0)
    assert bucket.take(10.0) == 50
    assert bucket.discarded == pytest.approx(950.0)


def test_set_rate_applies_from_then_on() -> None:
    bucket = TokenBucket(rate=10.0, capacity=1_000.0, now=0.0)
    bucket.set_rate(100.0, now=1.0)
    assert bucket.rate == 100.0
    assert bucket.take(2.0) == 110


@pytest.mark.parametrize(("rate", "capacity"), [(-1.0, 10.0), (float("nan"), 10.0), (10.0, 0.5)])
def test_bucket_rejects_bad_arguments(rate: float, capacity: float) -> None:
    with pytest.raises(GenerationError):
        TokenBucket(rate, capacity, now=0.0)


def test_give_back_rejects_a_negative_count() -> None:
    with pytest.raises(GenerationError):
        TokenBucket(1.0, 1.0, now=0.0).give_back(-1)
