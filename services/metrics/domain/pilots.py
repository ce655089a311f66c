"""The 30-day pilot: its weeks, what each week is for, and the arm-versus-arm comparison.

A pilot's week 1 starts at its first assignment (the earliest SequenceStarted carrying its
``pilot_id``); week ``n`` covers days ``7(n-1)`` to ``7n`` after that instant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.metrics.domain.stats import Difference, newcombe_difference

PHASES: dict[int, str] = {
    1: "define: choose the segment, the words and the holdout",
    2: "launch small: the first patients are messaged",
    3: "review responses, objections and barriers",
    4: "compare rebooking and completion with the previous process (the holdout)",
}

# The proportions compared between arms: figure -> (numerator stage, denominator stage).
COMPARED: dict[str, tuple[str, str]] = {
    "rebooked_rate": ("rebooked", "assigned"),
    "completed_rate": ("completed", "assigned"),
}

# Replies that voice an objection (a reason not to come back, or not now).
OBJECTION_INTENTS: frozenset[str] = frozenset({"decline", "no_longer_needed", "later"})


def pilot_week(start: datetime, at: datetime) -> int:
    """1 for the first seven days after ``start``, 2 for the next seven, and so on."""
    return int((at - start) // timedelta(days=7)) + 1


def phase(week: int) -> str:
    return PHASES.get(week, "after the pilot: keep measuring")


@dataclass(frozen=True)
class Comparison:
    figure: str
    outreach: tuple[int, int]  # (successes, assigned)
    holdout: tuple[int, int]
    difference: Difference


def compare(arms: Mapping[str, Mapping[str, int]]) -> list[Comparison]:
    """Outreach minus holdout for each compared figure, with its 95% interval."""
    out = []
    for figure, (num, den) in COMPARED.items():
        o = (arms.get("outreach", {}).get(num, 0), arms.get("outreach", {}).get(den, 0))
        h = (arms.get("holdout", {}).get(num, 0), arms.get("holdout", {}).get(den, 0))
        out.append(Comparison(figure, o, h, newcombe_difference(o[0], o[1], h[0], h[1])))
    return out
