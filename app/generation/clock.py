"""The simulated clock: START_TIME, SPEEDUP and BACKFILL.

Live, the clock reads ``start + (wall - wall at start) x speedup``: with the defaults (START_TIME now, SPEEDUP 1) it
is the wall clock. With a backfill it starts ``backfill`` earlier and does not follow the wall clock: the caller moves
it on (``advance``) as fast as it makes events, until it reaches the live reading; from then on it is live.

Everything is in epoch milliseconds of simulated time, except the wall clock, read in seconds from the caller's
``wall`` function so tests can drive it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, tzinfo

from app.generation.exceptions import GenerationError

#: A duration as BACKFILL takes it: one or more <number><unit>, unit s, m, h, d or w ("7d", "1d12h", "90m").
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
DURATION_ACCEPTS = "a duration such as 7d, 36h, 1d12h or 90m (units s, m, h, d, w)"
START_ACCEPTS = "an ISO 8601 date and time such as 2026-11-30T00:00:00Z (without an offset: in TIMEZONE)"


def parse_duration(text: str) -> float:
    """Seconds in ``text`` ("7d", "1d12h", "90m"); ValueError naming what is accepted otherwise."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        msg = f"not {DURATION_ACCEPTS}"
        raise ValueError(msg)
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def parse_start(text: str, zone: tzinfo) -> int:
    """Epoch milliseconds of the ISO 8601 moment ``text``; one without an offset is read on the clocks of ``zone``."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        msg = f"not {START_ACCEPTS}"
        raise ValueError(msg) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return round(moment.timestamp() * 1000)


class SimulatedClock:
    """Simulated epoch milliseconds, live or backfilling (see the module's docstring)."""

    __slots__ = ("_backfilling", "_position", "_speedup", "_start_ms", "_start_wall", "_wall")

    def __init__(
        self,
        start_ms: int | None = None,
        speedup: float = 1.0,
        backfill_ms: int = 0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``start_ms``: simulated time now (None: the wall clock's now); ``speedup``: simulated seconds per wall
        second; ``backfill_ms``: how much history before ``start_ms`` to make first."""
        if not (speedup > 0 and speedup < float("inf")):
            msg = f"speedup {speedup!r}: expected simulated seconds per wall second > 0"
            raise GenerationError(msg)
        if backfill_ms < 0:
            msg = f"backfill {backfill_ms!r} ms: expected a duration >= 0"
            raise GenerationError(msg)
        self._wall = wall
        self._start_wall = wall()
        self._start_ms = round(self._start_wall * 1000) if start_ms is None else start_ms
        self._speedup = speedup
        self._position = self._start_ms - backfill_ms
        self._backfilling = backfill_ms > 0

    @property
    def speedup(self) -> float:
        """Simulated seconds per wall second while live."""
        return self._speedup

    def live_ms(self) -> int:
        """What the clock reads once live: the start moved on by the wall time since, times the speedup."""
        return self._start_ms + round((self._wall() - self._start_wall) * 1000 * self._speedup)

    @property
    def backfilling(self) -> bool:
        """True until the backfill has caught up with the live reading."""
        if self._backfilling and self._position >= self.live_ms():
            self._backfilling = False
        return self._backfilling

    def now_ms(self) -> int:
        """Simulated time now: the backfill's position, or the live reading (never going back)."""
        if not self.backfilling:
            self._position = max(self._position, self.live_ms())
        return self._position

    def advance(self, ms: float) -> int:
        """While backfilling: move on ``ms`` (at most to the live reading); simulated time now."""
        if self.backfilling:
            self._position = min(self._position + round(ms), self.live_ms())
        return self.now_ms()

    def not_before(self, moment_ms: int) -> None:
        """Move the clock on to ``moment_ms`` if it is behind (a restarted worker whose shards' truth is published
        through there): a live clock shifts its start with it, so it keeps its pace from there."""
        if moment_ms <= self.now_ms():
            return
        self._position = moment_ms
        live = self.live_ms()
        if not self._backfilling or moment_ms >= live:
            self._backfilling = False
            self._start_ms += moment_ms - live
