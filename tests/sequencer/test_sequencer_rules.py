"""Allowed hours (across daylight-saving changes), caps, snooze bounds and state hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.sequencer.domain.rules import (
    AllowedHours,
    Rules,
    add_local,
    cap_release,
    is_allowed,
    next_allowed,
    plan,
    snooze_until,
)
from services.sequencer.policy import ClinicRules, StateHours, default_state_hours, rules_for

NY = ZoneInfo("America/New_York")
HOURS = AllowedHours()
RULES = Rules(zone="America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_a_moment_inside_allowed_hours_is_kept() -> None:
    at = utc(2026, 3, 3, 15, 0)  # 10:00 EST
    assert next_allowed(at, NY, HOURS) == at


def test_before_opening_waits_for_eight_in_the_patients_morning() -> None:
    assert next_allowed(utc(2026, 3, 3, 11, 0), NY, HOURS) == utc(2026, 3, 3, 13, 0)


def test_after_nine_in_the_evening_waits_for_the_next_morning() -> None:
    at = utc(2026, 3, 4, 2, 0)  # 21:00 EST on the 3rd: the end is exclusive
    assert next_allowed(at, NY, HOURS) == utc(2026, 3, 4, 13, 0)


def test_the_night_before_spring_forward_opens_at_eight_daylight_time() -> None:
    # 2026-03-08 02:00 EST becomes 03:00 EDT; 08:00 that morning is 12:00 UTC, not 13:00.
    assert next_allowed(utc(2026, 3, 8, 2, 30), NY, HOURS) == utc(2026, 3, 8, 12, 0)
    assert next_allowed(utc(2026, 3, 8, 6, 30), NY, HOURS) == utc(2026, 3, 8, 12, 0)


def test_both_one_thirties_of_the_fall_back_night_open_at_eight_standard_time() -> None:
    # 2026-11-01 02:00 EDT becomes 01:00 EST: 01:30 happens twice (05:30 and 06:30 UTC).
    first, second = utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)
    assert first.astimezone(NY).hour == second.astimezone(NY).hour == 1
    assert next_allowed(first, NY, HOURS) == utc(2026, 11, 1, 13, 0)
    assert next_allowed(second, NY, HOURS) == utc(2026, 11, 1, 13, 0)


def test_the_evening_of_fall_back_day_closes_at_nine_standard_time() -> None:
    assert is_allowed(utc(2026, 11, 2, 1, 59), NY, HOURS)  # 20:59 EST
    assert next_allowed(utc(2026, 11, 2, 2, 0), NY, HOURS) == utc(2026, 11, 2, 13, 0)


def test_the_evening_of_spring_forward_day_closes_at_nine_daylight_time() -> None:
    assert is_allowed(utc(2026, 3, 9, 0, 59), NY, HOURS)  # 20:59 EDT on the 8th
    assert not is_allowed(utc(2026, 3, 9, 1, 0), NY, HOURS)  # 21:00 EDT


def test_a_day_later_keeps_the_local_hour_across_both_changes() -> None:
    spring = add_local(utc(2026, 3, 7, 15, 0), timedelta(days=1), NY)  # 10:00 EST -> 10:00 EDT
    assert spring == utc(2026, 3, 8, 14, 0)
    fall = add_local(utc(2026, 10, 31, 14, 0), timedelta(days=1), NY)  # 10:00 EDT -> 10:00 EST
    assert fall == utc(2026, 11, 1, 15, 0)


def test_an_evening_step_a_day_later_is_not_pushed_into_quiet_hours_by_the_change() -> None:
    evening = utc(2026, 3, 8, 1, 30)  # 20:30 EST on the 7th
    local_day_later = add_local(evening, timedelta(days=1), NY)  # 20:30 EDT on the 8th
    assert plan(local_day_later, NY, RULES) == local_day_later
    naive = evening + timedelta(days=1)  # 21:30 EDT: quiet hours
    assert plan(naive, NY, RULES) == utc(2026, 3, 9, 12, 0)


def test_one_message_a_day_means_the_next_waits_twenty_four_hours() -> None:
    sent = utc(2026, 3, 3, 15, 0)
    assert cap_release([sent], sent + timedelta(hours=3), RULES) == sent + timedelta(days=1)
    assert cap_release([sent], sent + timedelta(days=1), RULES) is None


def test_three_a_week_means_the_fourth_waits_for_the_oldest_to_leave_the_week() -> None:
    sends = [utc(2026, 3, 2, 15), utc(2026, 3, 4, 15), utc(2026, 3, 6, 15)]
    assert cap_release(sends, utc(2026, 3, 7, 16), RULES) == utc(2026, 3, 9, 15)
    assert cap_release(sends, utc(2026, 3, 9, 15), RULES) is None


def test_a_cap_of_zero_is_no_cap() -> None:
    rules = Rules(per_day=0, per_week=0)
    assert cap_release([utc(2026, 3, 3, 15)] * 5, utc(2026, 3, 3, 16), rules) is None


def test_planning_respects_caps_then_allowed_hours() -> None:
    sent = utc(2026, 3, 3, 23, 30)  # 18:30 EST
    # A day later is 18:30 EST on the 4th: allowed, and the cap has just released.
    assert plan(sent + timedelta(hours=1), NY, RULES, [sent]) == sent + timedelta(days=1)
    # 20:30 EST the night before spring forward: the cap releases 24 hours later, which is
    # 21:30 EDT, inside quiet hours, so the next message waits for 08:00 EDT the day after.
    late = utc(2026, 3, 8, 1, 30)
    assert plan(late + timedelta(hours=1), NY, RULES, [late]) == utc(2026, 3, 9, 12, 0)


def test_planning_waits_out_the_rest_period() -> None:
    rest = utc(2026, 3, 20, 3, 0)  # 23:00 EDT on the 19th
    assert plan(utc(2026, 3, 3, 15), NY, RULES, rest_until=rest) == utc(2026, 3, 20, 12, 0)


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        (date(2026, 4, 1), date(2026, 4, 1)),
        (date(2027, 1, 1), date(2026, 6, 1)),  # bounded: 90 days
        (date(2026, 3, 1), date(2026, 3, 4)),  # in the past: at least a day
        (None, date(2026, 4, 2)),  # no date: 30 days
    ],
)
def test_a_snooze_ends_on_the_asked_date_within_bounds_at_opening_time(
    asked: date | None, expected: date
) -> None:
    until = snooze_until(asked, utc(2026, 3, 3, 15), NY, RULES)
    local = until.astimezone(NY)
    assert (local.date(), local.time()) == (expected, time(8, 0))


def test_a_state_narrows_a_clinics_wider_hours() -> None:
    clinic = ClinicRules(state="FL", allowed_from=time(7, 0), allowed_until=time(21, 0))
    rules = rules_for(RULES, clinic, default_state_hours())
    assert rules.hours == AllowedHours(time(8, 0), time(20, 0))


def test_a_clinic_can_set_its_own_zone_caps_and_hours() -> None:
    clinic = ClinicRules(
        time_zone="America/Denver", per_week=2, allowed_from=time(9), allowed_until=time(18)
    )
    rules = rules_for(RULES, clinic, {})
    assert (rules.zone, rules.per_week, rules.per_day) == ("America/Denver", 2, 1)
    assert rules.hours == AllowedHours(time(9), time(18))


def test_hours_that_do_not_overlap_a_states_are_refused() -> None:
    clinic = ClinicRules(state="TX", allowed_from=time(7), allowed_until=time(8, 30))
    states = {"TX": StateHours(allowed_from=time(9), allowed_until=time(21))}
    with pytest.raises(ValueError, match="do not overlap"):
        rules_for(RULES, clinic, states)


def test_reversed_hours_are_refused() -> None:
    with pytest.raises(ValueError, match="before"):
        ClinicRules(allowed_from=time(21), allowed_until=time(8))
