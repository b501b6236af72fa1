"""The agents' clock: simulated time as the agents can know it, from what they consume.

The generator's simulated clock (START_TIME, SPEEDUP, BACKFILL) stamps the orders. The agents follow it through the
records they take: their time is the latest record timestamp taken so far, moved on at SPEEDUP simulated seconds per
wall second since it was taken; before anything is taken, the generator's starting point (START_TIME - BACKFILL, or
now), moved on likewise. It never goes back. With the defaults this is the wall clock, or a record timestamp ahead
of it.

A derived record is stamped ``stamp(event_time)``: the later of the clock and its own event time. So it is never
stamped before the order it comes from (taken before, so the clock is past the order's timestamp), its event time
is never after its record timestamp, and no record is stamped before a moment the clock has already shown: the
agents' truth may close a minute once the clock has passed it.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class AgentClock:
    """Epoch milliseconds of simulated time, following the record timestamps the agents take."""

    __slots__ = ("_base_ms", "_base_wall", "_speedup", "_wall")

    def __init__(self, start_ms: int | None = None, speedup: float = 1.0, wall: Callable[[], float] = time.time):
        """``start_ms``: the simulated time now (None: the wall clock's); ``speedup``: simulated s per wall s."""
        self._wall = wall
        self._speedup = speedup
        self._base_wall = wall()
        self._base_ms = round(self._base_wall * 1000) if start_ms is None else start_ms

    def now_ms(self) -> int:
        """Simulated time now."""
        return self._base_ms + round((self._wall() - self._base_wall) * 1000 * self._speedup)

    def saw(self, timestamp_ms: int) -> None:
        """A record stamped ``timestamp_ms`` was taken: the clock is at least there from now on."""
        if timestamp_ms > self.now_ms():
            self._base_ms, self._base_wall = timestamp_ms, self._wall()

    def stamp(self, event_time_ms: object) -> int:
        """The record timestamp of a derived record whose event time is ``event_time_ms`` (an int, or None)."""
        now = self.now_ms()
        return event_time_ms if isinstance(event_time_ms, int) and event_time_ms > now else now
