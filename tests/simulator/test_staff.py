"""The practice's staff in the simulation: who takes which page when, and closing cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from simulator.staff import Act, next_act

CHICAGO = ZoneInfo("America/Chicago")
TUESDAY_NIGHT = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # 22:00 Monday in Chicago
TUESDAY_NOON = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # 12:00 in Chicago


def case(severity: str, raised: datetime, **more: Any) -> dict[str, Any]:
    return {
        "escalation_id": f"esc-{severity}-{raised:%H%M}",
        "severity": severity,
        "case_type": "red_flag" if severity == "urgent" else "unclassified_reply",
        "raised_at": raised.isoformat(),
        "first_paged_at": raised.isoformat(),
        "acknowledged_at": None,
        **more,
    }


def test_an_urgent_page_is_taken_within_minutes_even_at_night() -> None:
    red_flag = case("urgent", TUESDAY_NIGHT)
    assert next_act(red_flag, TUESDAY_NIGHT, CHICAGO, seed=7) is None  # not the same instant
    assert (
        next_act(red_flag, TUESDAY_NIGHT + timedelta(minutes=10), CHICAGO, seed=7)
        is Act.acknowledge
    )


def test_a_low_case_waits_for_business_hours() -> None:
    question = case("low", TUESDAY_NIGHT)
    late = TUESDAY_NIGHT + timedelta(hours=5)  # 03:00 in Chicago
    assert next_act(question, late, CHICAGO, seed=7) is None
    assert next_act(question, TUESDAY_NOON, CHICAGO, seed=7) is Act.acknowledge


def test_a_taken_case_is_closed_within_three_hours_and_not_before_a_quarter_hour() -> None:
    taken = case("high", TUESDAY_NOON, acknowledged_at=TUESDAY_NOON.isoformat())
    assert next_act(taken, TUESDAY_NOON + timedelta(minutes=14), CHICAGO, seed=7) is None
    assert next_act(taken, TUESDAY_NOON + timedelta(minutes=180), CHICAGO, seed=7) is Act.resolve


def test_the_same_seed_gives_the_same_staff() -> None:
    cases = [case("normal", TUESDAY_NOON - timedelta(minutes=m)) for m in range(0, 120, 7)]
    at = TUESDAY_NOON + timedelta(minutes=30)
    first = [next_act(c, at, CHICAGO, seed=3) for c in cases]
    assert first == [next_act(c, at, CHICAGO, seed=3) for c in cases]
    assert {Act.acknowledge, None} == set(first)  # some taken already, some not yet
