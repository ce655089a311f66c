"""The previous process: the pilot's own cohort definition screens the weeks before its launch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.metrics.domain import pilots
from services.metrics.domain.stats import newcombe_difference
from shared.events.common import Initiator, Segment, ServiceLine
from shared.events.pilot import CohortFilters, PilotPlan

LAUNCH = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
PLAN = PilotPlan(
    segment=Segment.cancelled_not_rescheduled,
    cohort=CohortFilters(
        service_lines=(ServiceLine.neurotoxin, ServiceLine.filler),
        cancelled_by=(Initiator.patient,),
        max_age_days=10,
    ),
    starts_at=LAUNCH - timedelta(days=7),
    launched_at=LAUNCH,
    ends_at=LAUNCH + timedelta(days=23),
    baseline_days=21,
)


def row(line: str = "neurotoxin", days_before: int = 5, **kw: Any) -> dict[str, Any]:
    eligible = LAUNCH - timedelta(days=days_before)
    base: dict[str, Any] = {
        "segment": "cancelled_not_rescheduled",
        "service_line": line,
        "provider_id": "dr-1",
        "location_id": "loc-1",
        "urgency": "routine",
        "due_at": eligible,
        "cancellation_reason": "schedule_conflict",
        "cancelled_by": "patient",
        "eligible_at": eligible,
        "first_sent_at": None,
        "clicked_at": None,
        "assigned_bookings": 0,
        "assigned_completed_visits": 0,
        "assigned_revenue_cents": 0,
    }
    return {**base, **kw}


def test_the_baseline_is_the_plans_days_before_the_launch() -> None:
    assert pilots.baseline_span(PLAN) == (LAUNCH - timedelta(days=21), LAUNCH)


def test_the_previous_weeks_take_only_what_the_cohort_takes_counted_from_eligibility() -> None:
    rows = [
        row(assigned_bookings=1, assigned_completed_visits=1, assigned_revenue_cents=45_000),
        row("filler", first_sent_at=LAUNCH - timedelta(days=4), assigned_bookings=1),
        row(),
        row("mohs"),  # another service line
        row(cancelled_by="practice"),  # the practice cancelled
        row(cancellation_reason="no_show", cancelled_by=None),  # a no-show has no canceller
        row(due_at=LAUNCH - timedelta(days=30)),  # eleven days old when it became eligible
        row(due_at=None, urgency=None),  # recorded before the facts were carried
    ]
    got = pilots.previous_weeks(PLAN, rows)
    assert got == {
        "assigned": 3,
        "messaged": 1,  # messaged by outreach outside the pilot: the report shows it
        "clicked": 0,
        "rebooked": 2,
        "completed": 1,
        "revenue_cents": 45_000,
        "unscreened": 1,
        "screened_out": 4,
    }


def test_the_outreach_arm_is_compared_with_the_previous_weeks_with_newcombes_interval() -> None:
    outreach = {"assigned": 20, "rebooked": 9, "completed": 7}
    previous = {"assigned": 30, "rebooked": 6, "completed": 5}
    by_figure = {c.figure: c for c in pilots.compare_with(outreach, previous)}
    expected = newcombe_difference(9, 20, 6, 30)
    rebooked = by_figure["rebooked_rate"]
    assert (rebooked.outreach, rebooked.holdout) == ((9, 20), (6, 30))
    d = rebooked.difference
    assert (d.estimate, d.low, d.high) == pytest.approx(
        (expected.estimate, expected.low, expected.high)
    )
    empty = pilots.compare_with(outreach, None)
    assert all(c.difference.estimate is None for c in empty)  # no previous weeks: no interval
