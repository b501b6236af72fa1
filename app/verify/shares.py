"""Shares against their probabilities, within a tolerance the sample size gives.

An observed share of ``n`` independent draws, each a hit with probability ``p``, has the standard error
sqrt(p (1 - p) / n); a share check passes when it lies within Z of them of ``p``. With Z = 4.5 a correct run fails
one check with probability about 7e-6 where the normal approximation holds, and at most 2e-4 (exact binomial tails)
at the edge of the sample sizes judged: ``n p`` and ``n (1 - p)`` at least MIN_EXPECTED. Smaller samples say too
little and are skipped. A multinomial (the mix, the methods, the bad kinds, the quantities) is checked one category
at a time: each category's count is binomial.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from app.verify.results import FAIL, PASS, SKIP, CheckResult, skipped

#: Standard errors an observed share may lie from its probability.
Z = 4.5
#: The fewest expected hits and misses for the normal approximation the tolerance rests on.
MIN_EXPECTED = 5.0


def tolerance(p: float, n: int, z: float = Z) -> float:
    """How far the share of ``n`` draws may lie from ``p``: z sqrt(p (1 - p) / n)."""
    return z * math.sqrt(p * (1.0 - p) / n)


def share_check(name: str, hits: int, n: int, p: float, what: str, z: float = Z) -> CheckResult:
    """``hits`` of ``n`` ``what`` against probability ``p``.

    p = 0 or 1 is exact (no draw can differ); a sample with fewer than MIN_EXPECTED expected hits or misses is skipped.
    """
    if n == 0:
        return skipped(name, f"nothing to count ({what})")
    observed = hits / n
    if p in (0.0, 1.0):
        status = PASS if hits == round(p * n) else FAIL
        return CheckResult(name, status, observed, p, 0.0, n, f"{hits:,} of {n:,} {what} (exact: p is {p:g})")
    if n * p < MIN_EXPECTED or n * (1.0 - p) < MIN_EXPECTED:
        reason = f"{hits:,} of {n:,} {what}: too few to judge (n*p and n*(1-p) must be >= {MIN_EXPECTED:g})"
        return CheckResult(name, SKIP, observed, p, None, n, reason)
    band = tolerance(p, n, z)
    status = PASS if abs(observed - p) <= band else FAIL
    return CheckResult(name, status, observed, p, band, n, f"{hits:,} of {n:,} {what}")


def shares_check(
    prefix: str, counts: Mapping[str, int], probabilities: Mapping[str, float], what: str, z: float = Z
) -> list[CheckResult]:
    """Each category of ``probabilities`` (normalised) against its count among all ``counts``.

    A category counted that has no probability is a FAIL of its own (``<prefix>.unexpected``).
    """
    total = math.fsum(probabilities.values())
    n = sum(counts.values())
    results = [
        share_check(f"{prefix}.{category}", counts.get(category, 0), n, weight / total, what, z)
        for category, weight in probabilities.items()
    ]
    unexpected = {category: count for category, count in counts.items() if category not in probabilities and count}
    if unexpected:
        shown = ", ".join(f"{category}: {count:,}" for category, count in sorted(unexpected.items()))
        results.append(
            CheckResult(f"{prefix}.unexpected", FAIL, sum(unexpected.values()), 0, 0, n, f"not expected: {shown}")
        )
    return results
