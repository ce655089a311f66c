"""Rates over counted episodes: each one's numerator and denominator, in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.metrics.domain.stats import rate

# rate -> (numerator, denominator); a rate with a zero denominator is None, never 0.
FUNNEL_RATES: dict[str, tuple[str, str]] = {
    "reach_rate": ("reached", "messaged"),
    "response_rate": ("replied", "reached"),  # opt-outs are not replies: opt_out_rate
    "opt_out_rate": ("opted_out", "messaged"),
    "rebooked_rate": ("rebooked", "messaged"),
    "completed_rate": ("completed", "messaged"),
    "cancellation_recovery_rate": ("cancellations_recovered", "cancellations"),
}
PILOT_RATES: dict[str, tuple[str, str]] = {
    "reach_rate": ("reached", "messaged"),
    "response_rate": ("replied", "reached"),
    "opt_out_rate": ("opted_out", "messaged"),
    "rebooked_rate": ("rebooked", "assigned"),
    "completed_rate": ("completed", "assigned"),
}


def with_rates(row: Mapping[str, Any], rates: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    out = dict(row)
    for name, (num, den) in rates.items():
        out[name] = rate(int(row.get(num) or 0), int(row.get(den) or 0))
    return out


def reactivation_rate(kind: str, completed: int, eligible: int) -> float | None:
    """Reactivation segments only: eligibilities that came back for a completed visit."""
    return rate(completed, eligible) if kind == "reactivation" else None
