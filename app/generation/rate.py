"""How many events may go now: the diurnal curve and a token bucket, both driven by the caller's clock."""

from __future__ import annotations

import math
from datetime import datetime, tzinfo

from app.generation.exceptions import GenerationError

#: The diurnal curve: DIURNAL_MEAN - DIURNAL_SWING * cos(2 pi (hour - TROUGH_HOUR) / 24).
DIURNAL_MEAN = 0.9
DIURNAL_SWING = 0.5
TROUGH_HOUR = 4.0


def diurnal_factor(local_hour: float) -> float:
    """The traffic multiplier at ``local_hour`` (0 <= hour < 24, fractions allowed; any real is taken mod 24).

    ``0.9 - 0.5 * cos(2 pi (hour - 4) / 24)``: a smooth 24-hour cosine with its trough of 0.4 at 04:00,
    its peak of 1.4 at 16:00, 0.9 at 10:00 and 22:00, and a mean of 0.9 over the day.
    """
    return DIURNAL_MEAN - DIURNAL_SWING * math.cos(2.0 * math.pi * (local_hour - TROUGH_HOUR) / 24.0)


def local_hour(epoch_ms: int, zone: tzinfo) -> float:
    """The hour of the day, with its fraction, that the instant ``epoch_ms`` is on the clocks of ``zone``."""
    moment = datetime.fromtimestamp(epoch_ms / 1000.0, zone)
    return moment.hour + moment.minute / 60.0 + (moment.second + moment.microsecond / 1e6) / 3600.0


class TokenBucket:
    """Events allowed per second, refilled continuously from the caller's monotonic clock.

    The bucket starts empty, so a run's first second carries no burst. Fractional tokens carry over
    between calls, so the events taken over any long span equal rate x span to within one event.
    Tokens beyond ``capacity`` are discarded and counted in ``discarded``: that is the shortfall when
    the caller could not keep up (a stalled producer), never a silent cap.
    """

    __slots__ = ("_capacity", "_discarded", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        _check_rate(rate)
        if not capacity >= 1.0:
            msg = f"token bucket capacity {capacity!r}: expected a number of events >= 1"
            raise GenerationError(msg)
        self._rate = rate
        self._capacity = capacity
        self._tokens = 0.0
        self._last = now
        self._discarded = 0.0

    @property
    def rate(self) -> float:
        """Events per second the bucket refills at."""
        return self._rate

    @property
    def capacity(self) -> float:
        """The most events the bucket holds: the largest burst after a stall."""
        return self._capacity

    @property
    def tokens(self) -> float:
        """Events allowed but not yet taken, with their fraction, as of the last call."""
        return self._tokens

    @property
    def discarded(self) -> float:
        """Events lost to the capacity since the start: the shortfall against rate x time."""
        return self._discarded

    def set_rate(self, rate: float, now: float) -> None:
        """Refill at the old rate up to ``now``, then at ``rate`` from there on."""
        _check_rate(rate)
        self._refill(now)
        self._rate = rate

    def take(self, now: float, limit: int | None = None) -> int:
        """Consume and return the whole events allowed at ``now``, at most ``limit`` of them."""
        self._refill(now)
        whole = int(self._tokens)
        if limit is not None:
            whole = max(0, min(whole, limit))
        self._tokens -= whole
        return whole

    def give_back(self, count: int) -> None:
        """Return ``count`` taken events that could not be sent, so they go out later instead of being lost."""
        if count < 0:
            msg = f"give_back({count}): expected a count >= 0"
            raise GenerationError(msg)
        self._tokens += count

    def _refill(self, now: float) -> None:
        elapsed = now - self._last
        if elapsed > 0.0:
            self._tokens += elapsed * self._rate
            self._last = now
        if self._tokens > self._capacity:
            self._discarded += self._tokens - self._capacity
            self._tokens = self._capacity


def _check_rate(rate: float) -> None:
    if not (rate >= 0.0 and math.isfinite(rate)):
        msg = f"token bucket rate {rate!r}: expected a finite number of events per second >= 0"
        raise GenerationError(msg)
