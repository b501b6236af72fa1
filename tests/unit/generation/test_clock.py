"""The simulated clock (START_TIME, SPEEDUP, BACKFILL): parsing, the clock itself, and the generator driven by it."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agents.generation import Generation
from app.exceptions import SettingsError
from app.generation import GenerationConfig, ShardStream
from app.generation.clock import SimulatedClock, parse_duration, parse_start
from app.generation.rate import diurnal_factor
from app.settings import load_settings
from app.stats import EmissionStats
from tests.unit.generation.support import FrozenWall, make_catalog
from tests.unit.support import RecordingProducer

START = "2026-11-30T00:00:00Z"
START_MS = 1_795_996_800_000  # 2026-11-30T00:00:00Z, checked below
HOUR_MS = 3_600_000


def test_start_ms_constant_is_the_moment_named() -> None:
    assert parse_start(START, ZoneInfo("UTC")) == START_MS


# Parsing ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 604_800), ("36h", 129_600), ("1d12h", 129_600), ("90m", 5_400), ("30s", 30), ("2w", 1_209_600),
     ("1.5h", 5_400), (" 1D ", 86_400)],
)
def test_durations_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "7d 3h", "-1d", "1d-2h", "P7D", "1e3s"])
def test_a_malformed_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="a duration such as 7d"):
        parse_duration(text)


def test_a_start_without_an_offset_is_read_in_the_time_zone() -> None:
    paris = parse_start("2026-11-30T01:00:00", ZoneInfo("Europe/Paris"))
    assert paris == START_MS  # 01:00 in Paris in winter is 00:00 UTC
    assert parse_start("2026-11-30T01:00:00+01:00", ZoneInfo("UTC")) == START_MS


@pytest.mark.parametrize(
    ("variable", "value", "accepts"),
    [("START_TIME", "yesterday", "ISO 8601"), ("BACKFILL", "a week", "a duration such as 7d"),
     ("BACKFILL", "0d", "a duration such as 7d"), ("SPEEDUP", "0", "simulated seconds per wall second"),
     ("SPEEDUP", "-2", "simulated seconds per wall second")],
)
def test_bad_clock_settings_get_one_line_naming_what_is_accepted(variable: str, value: str, accepts: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({variable: value})
    message = str(raised.value)
    assert "\n" not in message
    assert variable in message
    assert value in message
    assert accepts in message


def test_the_clock_settings_read_as_milliseconds() -> None:
    settings = load_settings({"START_TIME": START, "BACKFILL": "1d12h", "SPEEDUP": "60"})
    assert settings.start_ms == START_MS
    assert settings.backfill_ms == 129_600_000
    assert settings.bucket_capacity == 600.0  # one wall second at TARGET_EPS (10) x SPEEDUP


# The clock -------------------------------------------------------------------------------------------------------


def test_by_default_the_clock_is_the_wall_clock() -> None:
    wall = FrozenWall(1_700_000_000.25)
    clock = SimulatedClock(wall=wall)
    assert clock.now_ms() == 1_700_000_000_250
    wall.seconds += 2.5
    assert clock.now_ms() == 1_700_000_002_750
    assert not clock.backfilling


def test_a_speedup_runs_the_clock_that_many_times_faster_from_the_start() -> None:
    wall = FrozenWall(1_700_000_000.0)
    clock = SimulatedClock(START_MS, 60.0, wall=wall)
    assert clock.now_ms() == START_MS
    wall.seconds += 1.5
    assert clock.now_ms() == START_MS + 90_000


def test_a_backfill_moves_only_when_advanced_and_stops_at_the_live_reading() -> None:
    wall = FrozenWall(1_700_000_000.0)
    clock = SimulatedClock(START_MS, 1.0, HOUR_MS, wall=wall)
    assert clock.backfilling
    assert clock.now_ms() == START_MS - HOUR_MS
    wall.seconds += 10  # the wall moves: the backfill does not
    assert clock.now_ms() == START_MS - HOUR_MS
    assert clock.advance(HOUR_MS - 1_000) == START_MS - 1_000
    assert clock.backfilling
    assert clock.advance(60_000) == START_MS + 10_000  # never past the live reading, which moved on 10 s
    assert not clock.backfilling
    wall.seconds += 1
    assert clock.now_ms() == START_MS + 11_000
    assert clock.advance(50_000) == START_MS + 11_000  # live: advancing does nothing


def test_not_before_moves_a_clock_that_is_behind_and_keeps_its_pace() -> None:
    wall = FrozenWall(1_700_000_000.0)
    clock = SimulatedClock(START_MS, 10.0, wall=wall)
    clock.not_before(START_MS - 5_000)  # not behind: unchanged
    assert clock.now_ms() == START_MS
    clock.not_before(START_MS + HOUR_MS)
    assert clock.now_ms() == START_MS + HOUR_MS
    wall.seconds += 1
    assert clock.now_ms() == START_MS + HOUR_MS + 10_000


def test_not_before_inside_a_backfill_skips_what_is_behind_and_beyond_it_goes_live() -> None:
    wall = FrozenWall(1_700_000_000.0)
    clock = SimulatedClock(START_MS, 1.0, 2 * HOUR_MS, wall=wall)
    clock.not_before(START_MS - HOUR_MS)
    assert clock.backfilling
    assert clock.now_ms() == START_MS - HOUR_MS
    clock.not_before(START_MS + 5_000)
    assert not clock.backfilling
    wall.seconds += 1
    assert clock.now_ms() == START_MS + 6_000


def test_a_clock_with_a_speedup_of_zero_is_refused() -> None:
    from app.generation.exceptions import GenerationError

    with pytest.raises(GenerationError, match="speedup"):
        SimulatedClock(START_MS, 0.0)


# The generator on the simulated clock ----------------------------------------------------------------------------


class Codec:
    def encode(self, kind: str, value: Any) -> bytes:
        return b"x"


def generation_of(environ: dict[str, str], wall: FrozenWall) -> tuple[Generation, RecordingProducer]:
    settings = load_settings({"GENERATION_SHARDS": "2", "TRUTH_ENABLED": "false", "P_BAD_RECORD": "0", **environ})
    producer = RecordingProducer()
    generation = Generation(settings, Codec(), producer, EmissionStats(), wall_clock=wall)  # type: ignore[arg-type]
    catalog = make_catalog(users=300, products=40)
    streams = {
        shard: ShardStream(
            catalog,
            GenerationConfig.from_settings(settings),
            seed=5,
            price_seed=5,
            shard=shard,
            shards=2,
            first_event=0,
            reserved=10**9,
        )
        for shard in range(2)
    }
    generation.hold(streams)
    return generation, producer


def expected_events(target_eps: float, from_ms: int, to_ms: int) -> float:
    """TARGET_EPS x the diurnal factor, integrated over [from_ms, to_ms) in UTC (1 s steps, midpoint rule)."""
    seconds = (to_ms - from_ms) // 1000
    return sum(target_eps * diurnal_factor(((from_ms + 1000 * s + 500) % 86_400_000) / HOUR_MS) for s in range(seconds))


def test_a_backfill_makes_its_hours_of_history_on_the_diurnal_curve_then_goes_live() -> None:
    wall = FrozenWall(1_700_000_000.0)  # frozen: the backfill alone moves the simulated clock
    generation, producer = generation_of({"TARGET_EPS": "4", "BACKFILL": "6h", "START_TIME": START}, wall)
    ticks = 0
    while generation.clock.backfilling:
        asyncio.run(generation.tick())
        ticks += 1
        assert ticks < 1_000, "the backfill does not end"
    stamps = [record[3] for record in producer.sent]
    assert stamps == sorted(stamps)
    assert stamps[0] >= START_MS - 6 * HOUR_MS
    assert stamps[-1] <= START_MS
    per_hour = Counter((stamp - (START_MS - 6 * HOUR_MS)) // HOUR_MS for stamp in stamps if stamp < START_MS)
    for hour in range(6):
        begin = START_MS - (6 - hour) * HOUR_MS
        expected = expected_events(4, begin, begin + HOUR_MS)
        # The bucket's rate is set at each step's start (steps of at most a second): far within 1%, plus an event.
        assert abs(per_hour[hour] - expected) <= 0.01 * expected + 1, (hour, per_hour[hour], expected)
    total = expected_events(4, START_MS - 6 * HOUR_MS, START_MS)
    assert abs(len(stamps) - total) <= 0.005 * total + 2
    # 18:00 to 00:00 UTC runs down from the peak: the first hour has more than the last.
    assert per_hour[0] > per_hour[5] * 1.5

    live = len(producer.sent)
    for _ in range(20):  # live now, at SPEEDUP 1: ten seconds of the midnight rate, in ticks of half a second
        wall.seconds += 0.5
        asyncio.run(generation.tick())
    after = [record[3] for record in producer.sent[live:]]
    assert abs(len(after) - expected_events(4, START_MS, START_MS + 10_000)) <= 2
    assert after[0] > START_MS
    assert after[-1] == START_MS + 10_000


def test_with_a_speedup_the_target_is_per_simulated_second() -> None:
    wall = FrozenWall(1_700_000_000.0)
    generation, producer = generation_of(
        {"TARGET_EPS": "2", "SPEEDUP": "60", "START_TIME": START, "DIURNAL_ENABLED": "false"}, wall
    )
    asyncio.run(generation.tick())
    for _ in range(5):
        wall.seconds += 0.5
        asyncio.run(generation.tick())
    stamps = [record[3] for record in producer.sent]
    assert len(stamps) == 2 * 60 * 2.5  # 2.5 wall seconds are 150 simulated seconds at 2 events each
    assert stamps == sorted(stamps)
    assert stamps[-1] == START_MS + 150_000


def test_the_simulated_time_of_day_sets_the_diurnal_factor() -> None:
    wall = FrozenWall(1_700_000_000.0)
    peak = "2026-11-30T16:00:00Z"  # 16:00 is the curve's peak, 1.4, whatever the wall clock says
    generation, _ = generation_of({"START_TIME": peak}, wall)
    asyncio.run(generation.tick())
    assert math.isclose(generation._stats.diurnal_factor, 1.4)
