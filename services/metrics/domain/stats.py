"""Proportions and their confidence intervals (pure arithmetic).

Pilot comparisons report the difference between two independent proportions (outreach arm
minus holdout) with a 95% interval by Newcombe's hybrid score method (Newcombe 1998, method 10):
it combines the two arms' Wilson score intervals, stays inside [-1, 1], and behaves at small
counts and at 0% or 100%, where the simple Wald interval collapses or overshoots. The Wald
interval is kept for reference and tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the 97.5th percentile of the standard normal distribution


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class Difference:
    """p1 - p2 with its interval; ``None`` figures mean an arm has no one in it."""

    p1: float | None
    p2: float | None
    estimate: float | None
    low: float | None
    high: float | None
    method: str = "newcombe-hybrid-score-95"


def rate(successes: int, trials: int) -> float | None:
    return successes / trials if trials else None


def wilson(successes: int, trials: int, z: float = Z_95) -> Interval:
    """Wilson score interval for one proportion."""
    if trials <= 0:
        raise ValueError("a proportion needs at least one trial")
    if not 0 <= successes <= trials:
        raise ValueError("successes must be between 0 and trials")
    n, p, z2 = trials, successes / trials, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = (z / (1 + z2 / n)) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def newcombe_difference(x1: int, n1: int, x2: int, n2: int, z: float = Z_95) -> Difference:
    """x1/n1 - x2/n2 with Newcombe's hybrid score interval."""
    if n1 <= 0 or n2 <= 0:
        return Difference(rate(x1, n1), rate(x2, n2), None, None, None)
    p1, p2 = x1 / n1, x2 / n2
    w1, w2 = wilson(x1, n1, z), wilson(x2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - w1.low) ** 2 + (w2.high - p2) ** 2)
    high = d + math.sqrt((w1.high - p1) ** 2 + (p2 - w2.low) ** 2)
    return Difference(p1, p2, d, low, high)


def wald_difference(x1: int, n1: int, x2: int, n2: int, z: float = Z_95) -> Difference:
    """x1/n1 - x2/n2 with the simple (Wald) interval: for comparison only."""
    if n1 <= 0 or n2 <= 0:
        return Difference(rate(x1, n1), rate(x2, n2), None, None, None, "wald-95")
    p1, p2 = x1 / n1, x2 / n2
    half = z * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return Difference(p1, p2, p1 - p2, p1 - p2 - half, p1 - p2 + half, "wald-95")
