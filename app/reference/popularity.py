"""Skewed popularity, as in real retail: Zipf-Mandelbrot weights 1/(rank + q), dealt out at random.

Only division and math.fsum are used, both exactly rounded by IEEE 754, so the weights are the same
bits on every machine (no pow/log/exp, whose last bit may differ between C libraries).
"""

from __future__ import annotations

import math
import random


def zipf_shares(count: int, offset: float) -> list[float]:
    """Shares of ranks 1..count (index 0 is rank 1): proportional to 1/(rank + offset), adding up to about 1."""
    raw = [1.0 / (rank + offset) for rank in range(1, count + 1)]
    total = math.fsum(raw)
    return [weight / total for weight in raw]


def deal_popularity(count: int, flatness: float, rng: random.Random) -> list[float]:
    """A share per entity 0..count-1: the Zipf ranks shuffled, so popular entities are spread at random.

    ``flatness`` is the offset q as a fraction of ``count``: 0 is plain Zipf, larger flattens the head.
    """
    shares = zipf_shares(count, flatness * count)
    rng.shuffle(shares)
    return shares


def activity_ranks(popularity: list[float]) -> list[int]:
    """Each entity's rank by popularity, 1 for the most popular; ties broken by position."""
    order = sorted(range(len(popularity)), key=lambda index: (-popularity[index], index))
    ranks = [0] * len(popularity)
    for rank, index in enumerate(order, start=1):
        ranks[index] = rank
    return ranks
