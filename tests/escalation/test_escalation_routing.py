"""Routing rules and business hours (pure, fixed instants)."""

from __future__ import annotations

from datetime import UTC, datetime, time

from hypothesis import given
from hypothesis import strategies as st

from services.escalation.domain import BusinessHours, Hours, PageWhen, RoutingRule, route
from services.escalation.domain import defaults as seed
from shared.events.escalations import CaseType, Severity

NY = "America/New_York"
HOURS = seed.default_hours(NY)
RULES = seed.default_rules()
# Wednesday 2026-03-04: 15:00 UTC is 10:00 in New York (open); 03:00 UTC is 22:00 Tuesday.
WED_MORNING = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
TUE_NIGHT = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
SAT_NOON = datetime(2026, 3, 7, 17, 0, tzinfo=UTC)


def test_a_red_flag_after_hours_goes_to_the_on_call_dermatologist_now() -> None:
    found = route(RULES, CaseType.red_flag, Severity.urgent, HOURS, TUE_NIGHT)
    assert found is not None
    assert found.rotation_id == seed.DERMATOLOGIST
    assert found.page_at == TUE_NIGHT


def test_a_red_flag_in_hours_goes_to_the_nurse_line_now() -> None:
    found = route(RULES, CaseType.red_flag, Severity.urgent, HOURS, WED_MORNING)
    assert found is not None
    assert (found.rotation_id, found.page_at) == (seed.NURSE_LINE, WED_MORNING)


def test_a_clinical_question_in_hours_goes_to_the_nurse_line() -> None:
    found = route(RULES, CaseType.clinical_question, Severity.normal, HOURS, WED_MORNING)
    assert found is not None
    assert found.rotation_id == seed.NURSE_LINE
    assert not found.deferred(WED_MORNING)


def test_a_clinical_question_after_hours_waits_for_the_next_opening() -> None:
    found = route(RULES, CaseType.clinical_question, Severity.high, HOURS, TUE_NIGHT)
    assert found is not None
    assert found.rotation_id == seed.NURSE_LINE
    # Wednesday 08:00 in New York (EST, UTC-5) is 13:00 UTC.
    assert found.page_at == datetime(2026, 3, 4, 13, 0, tzinfo=UTC)


def test_an_urgent_clinical_question_after_hours_pages_the_dermatologist_at_once() -> None:
    found = route(RULES, CaseType.clinical_question, Severity.urgent, HOURS, TUE_NIGHT)
    assert found is not None
    assert (found.rotation_id, found.page_at) == (seed.DERMATOLOGIST, TUE_NIGHT)


def test_service_recovery_goes_to_the_practice_manager() -> None:
    for case_type in (CaseType.poor_experience, CaseType.unresolved_concern):
        found = route(RULES, case_type, Severity.normal, HOURS, WED_MORNING)
        assert found is not None
        assert found.rotation_id == seed.PRACTICE_MANAGER


def test_a_weekend_case_waits_until_monday_morning() -> None:
    found = route(RULES, CaseType.booking_failed, Severity.normal, HOURS, SAT_NOON)
    assert found is not None
    assert found.rotation_id == seed.FRONT_DESK
    assert found.page_at == datetime(2026, 3, 9, 12, 0, tzinfo=UTC)  # 08:00 EDT (after DST)


def test_an_urgent_case_is_never_held_for_business_hours_even_if_a_rule_says_so() -> None:
    rules = [RoutingRule("all", 1, "desk", page=PageWhen.in_hours)]
    found = route(rules, CaseType.delivery_failures, Severity.urgent, HOURS, SAT_NOON)
    assert found is not None
    assert found.page_at == SAT_NOON


def test_rules_are_tried_by_priority_and_a_clinic_rule_can_route_by_severity() -> None:
    rules = [
        RoutingRule("catch-all", 100, "desk"),
        RoutingRule(
            "high-questions",
            5,
            "senior-nurse",
            frozenset({CaseType.clinical_question}),
            frozenset({Severity.high}),
            Hours.in_hours,
        ),
    ]
    high = route(rules, CaseType.clinical_question, Severity.high, HOURS, WED_MORNING)
    normal = route(rules, CaseType.clinical_question, Severity.normal, HOURS, WED_MORNING)
    night = route(rules, CaseType.clinical_question, Severity.high, HOURS, TUE_NIGHT)
    assert high is not None and high.rotation_id == "senior-nurse"
    assert normal is not None and normal.rotation_id == "desk"
    assert night is not None and night.rotation_id == "desk"


def test_no_matching_rule_routes_nowhere() -> None:
    rules = [RoutingRule("only-red", 1, "derm", frozenset({CaseType.red_flag}))]
    assert route(rules, CaseType.booking_failed, Severity.low, HOURS, WED_MORNING) is None


def test_business_hours_follow_the_clinics_time_zone() -> None:
    la = BusinessHours("America/Los_Angeles", time(8, 0), time(18, 0), frozenset(range(5)))
    at = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)  # 10:30 New York, 07:30 Los Angeles
    assert HOURS.is_open(at)
    assert not la.is_open(at)
    assert la.next_opening(at) == datetime(2026, 3, 4, 16, 0, tzinfo=UTC)


instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


@given(case_type=st.sampled_from(CaseType), severity=st.sampled_from(Severity), at=instants)
def test_the_default_rules_route_every_case_somewhere_and_never_page_before_it_is_raised(
    case_type: CaseType, severity: Severity, at: datetime
) -> None:
    found = route(RULES, case_type, severity, HOURS, at)
    assert found is not None
    assert found.rotation_id in {r.rotation_id for r in seed.default_rotations(NY)}
    assert found.page_at >= at
    if found.deferred(at):
        assert severity is not Severity.urgent
        assert HOURS.is_open(found.page_at)
    if case_type is CaseType.red_flag:
        assert not found.deferred(at)
