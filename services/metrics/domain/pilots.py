"""The 30-day pilot: its weeks, and its two comparisons.

Weeks count from the pilot's first day (``PilotPlan.starts_at``, week 1 = define; pilots
recorded before plans travelled count from their first assignment).

- **Pilot versus holdout** (concurrent, randomised by a hash): outreach arm minus holdout,
  both counted from assignment. The only comparison that supports a causal claim.
- **Pilot versus the previous weeks** (observational): the same cohort definition applied to
  the segment's eligibilities of the ``baseline_days`` before the launch, counted from
  eligibility over the same window, against the outreach arm. Anything else that changed
  between those weeks and the pilot's (season, staff, the schedule) is in the difference too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from services.metrics.domain.stats import Difference, newcombe_difference
from shared.events.common import ClinicalUrgency, Initiator, Segment, ServiceLine
from shared.events.pilot import PilotPlan
from shared.pilots import PHASE_WORDS, NeedFacts, phase_of, screen, week_of

# The proportions compared: figure -> (numerator stage, denominator stage).
COMPARED: dict[str, tuple[str, str]] = {
    "rebooked_rate": ("rebooked", "assigned"),
    "completed_rate": ("completed", "assigned"),
}

# Replies that voice an objection (a reason not to come back, or not now).
OBJECTION_INTENTS: frozenset[str] = frozenset({"decline", "no_longer_needed", "later"})

CAUSAL = (
    "Only the holdout comparison supports a causal claim: its patients were chosen by a hash "
    "at the same time, so the messages are the one difference between the arms. The previous "
    "weeks are observational: the same cohort definition a few weeks earlier, when anything "
    "else may also have been different."
)


def pilot_week(start: datetime, at: datetime) -> int:
    """1 for the first seven days after ``start``, 2 for the next seven, and so on."""
    return week_of(start, at)


def phase(week: int) -> str:
    return PHASE_WORDS[phase_of(week)]


@dataclass(frozen=True)
class Comparison:
    figure: str
    outreach: tuple[int, int]  # (successes, assigned)
    holdout: tuple[int, int]  # the other group: the holdout, or the previous weeks
    difference: Difference


def _pair(
    row: Mapping[str, int] | None, num: str, den: str
) -> tuple[int, int]:  # (successes, trials)
    row = row or {}
    return int(row.get(num) or 0), int(row.get(den) or 0)


def compare(arms: Mapping[str, Mapping[str, int]]) -> list[Comparison]:
    """Outreach minus holdout for each compared figure, with its 95% interval."""
    return compare_with(arms.get("outreach"), arms.get("holdout"))


def compare_with(
    pilot: Mapping[str, int] | None, other: Mapping[str, int] | None
) -> list[Comparison]:
    """The outreach arm minus another group (holdout or previous weeks), 95% interval."""
    out = []
    for figure, (num, den) in COMPARED.items():
        o, h = _pair(pilot, num, den), _pair(other, num, den)
        out.append(Comparison(figure, o, h, newcombe_difference(o[0], o[1], h[0], h[1])))
    return out


# --- the previous weeks -----------------------------------------------------------------------


def baseline_span(plan: PilotPlan) -> tuple[datetime, datetime]:
    """[from, to): the eligibilities the previous process is read from."""
    return plan.launched_at - timedelta(days=plan.baseline_days), plan.launched_at


def need_of(row: Mapping[str, Any]) -> NeedFacts | None:
    """An episode row's facts for screening; None when it predates the facts being recorded."""
    if row.get("due_at") is None or row.get("urgency") is None:
        return None
    due: datetime = row["due_at"]
    by = row.get("cancelled_by")
    return NeedFacts(
        segment=Segment(row["segment"]),
        service_line=ServiceLine(row["service_line"]),
        provider_id=row.get("provider_id"),
        location_id=row.get("location_id"),
        urgency=ClinicalUrgency(row["urgency"]),
        due_on=due.date() if isinstance(due, datetime) else date.fromisoformat(str(due)[:10]),
        missed_reason=row.get("cancellation_reason"),
        cancelled_by=Initiator(by) if by else None,
    )


PREVIOUS_FIGURES = ("assigned", "messaged", "clicked", "rebooked", "completed", "revenue_cents")


def previous_weeks(plan: PilotPlan, rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The previous process's figures: the rows (the segment's episodes of the baseline span
    with no pilot) that the pilot's cohort takes, screened at their own eligibility, counted
    from eligibility. ``unscreened`` counts rows recorded before the facts were."""
    out = dict.fromkeys((*PREVIOUS_FIGURES, "unscreened", "screened_out"), 0)
    for row in rows:
        need = need_of(row)
        if need is None:
            out["unscreened"] += 1
            continue
        if not screen(plan.segment, plan.cohort, need, row["eligible_at"]).taken:
            out["screened_out"] += 1
            continue
        out["assigned"] += 1
        out["messaged"] += 1 if row.get("first_sent_at") else 0
        out["clicked"] += 1 if row.get("clicked_at") else 0
        out["rebooked"] += 1 if row.get("assigned_bookings") else 0
        out["completed"] += 1 if row.get("assigned_completed_visits") else 0
        out["revenue_cents"] += int(row.get("assigned_revenue_cents") or 0)
    return out
