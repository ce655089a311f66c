"""A case's life with a fake clock: page, SLA re-pages, acknowledge, resolve, reassign."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import pytest

from services.escalation import domain
from services.escalation.domain import (
    AckPolicy,
    Action,
    Case,
    CaseConflict,
    CaseState,
    Decision,
    Member,
    Rotation,
    Route,
    Target,
)
from shared.clock import FixedClock
from shared.events.escalations import (
    CaseType,
    EscalationAcknowledged,
    EscalationResolved,
    Outcome,
    Severity,
)

T0 = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # 22:00 in New York: after hours
POLICY = AckPolicy()


def rot(rid: str, members: tuple[str, ...], fallback: str | None = None) -> Rotation:
    return Rotation(
        rid,
        rid,
        "America/New_York",
        time(8, 0),
        7,
        date(2026, 3, 2),
        tuple(Member(m) for m in members),
        fallback_rotation_id=fallback,
    )


ROTATIONS = {
    "derm": rot("derm", ("dr-a", "dr-b", "dr-c"), fallback="manager"),
    "manager": rot("manager", ("pm-1",)),
}


def new_case(severity: Severity = Severity.urgent, case_type: CaseType = CaseType.red_flag) -> Case:
    return Case(
        "esc-1",
        "clinic-1",
        "clinic-1:p-1",
        case_type,
        severity,
        "Patient reports a changing mole",
        T0,
    )


def raised(clock: FixedClock, severity: Severity = Severity.urgent) -> Decision:
    found = Route("red-flag-after-hours", "derm", clock.now())
    return domain.on_raised(new_case(severity), found, ROTATIONS, clock.now(), POLICY)


def expire(decision: Decision, clock: FixedClock) -> Decision:
    """Move the clock to the SLA deadline and fire the timer the decision scheduled."""
    assert decision.ack_timer_at is not None
    clock.set(decision.ack_timer_at)
    case = decision.case
    return domain.on_ack_due(case, case.attempt, ROTATIONS, clock.now(), POLICY)


def test_a_raised_red_flag_pages_the_on_call_dermatologist_with_a_five_minute_sla() -> None:
    clock = FixedClock(T0)
    d = raised(clock)
    assert d.page is not None
    assert (d.page.attempt, d.page.target) == (1, Target("derm", "dr-a"))
    assert d.case.state is CaseState.paging
    assert d.ack_timer_at == T0 + timedelta(minutes=5)
    assert [a.action for a in d.audit] == ["raised", "routed", "page_ordered"]


@pytest.mark.parametrize(
    ("severity", "minutes"),
    [(Severity.urgent, 5), (Severity.high, 15), (Severity.normal, 60), (Severity.low, 240)],
)
def test_the_acknowledgement_sla_depends_on_severity(severity: Severity, minutes: int) -> None:
    clock = FixedClock(T0)
    assert raised(clock, severity).ack_timer_at == T0 + timedelta(minutes=minutes)


def test_a_clinic_can_shorten_the_sla_for_one_severity() -> None:
    policy = POLICY.with_overrides({"high": 10})
    assert policy.due(Severity.high, T0) == T0 + timedelta(minutes=10)
    assert policy.due(Severity.urgent, T0) == T0 + timedelta(minutes=5)


def test_an_unanswered_page_goes_to_the_next_person_then_the_fallback_then_round_again() -> None:
    clock = FixedClock(T0)
    d = raised(clock)
    targets = [d.page.target.responder_id if d.page else None]
    for _ in range(4):
        d = expire(d, clock)
        targets.append(d.page.target.responder_id if d.page else None)
    assert targets == ["dr-a", "dr-b", "pm-1", "dr-a", "dr-b"]
    assert d.case.attempt == 5
    assert clock.now() == T0 + timedelta(minutes=20)
    assert any(a.action == "sla_expired" for a in d.audit)


def test_paging_stops_at_the_attempt_limit_and_the_case_is_flagged() -> None:
    clock = FixedClock(T0)
    policy = AckPolicy(max_attempts=2)
    d = domain.on_raised(new_case(), Route("r", "derm", T0), ROTATIONS, T0, policy)
    for _ in range(2):
        assert d.ack_timer_at is not None
        clock.set(d.ack_timer_at)
        d = domain.on_ack_due(d.case, d.case.attempt, ROTATIONS, clock.now(), policy)
    assert d.page is None and d.ack_timer_at is None
    assert d.case.exhausted and d.case.state is CaseState.paging
    assert [a.action for a in d.audit] == ["sla_expired", "pages_exhausted"]


def test_a_stale_sla_timer_from_an_earlier_attempt_does_nothing() -> None:
    clock = FixedClock(T0)
    d = raised(clock)
    moved = domain.reassign(d.case, "nurse-1", ROTATIONS, T0, POLICY, responder_id="dr-c")
    stale = domain.on_ack_due(moved.case, 1, ROTATIONS, T0 + timedelta(minutes=5), POLICY)
    assert not stale.changed and stale.page is None


def test_acknowledging_stops_the_sla_and_tells_the_notifiers() -> None:
    clock = FixedClock(T0)
    d = raised(clock)
    clock.advance(timedelta(minutes=2))
    acked = domain.acknowledge(d.case, "dr-a", clock.now())
    assert acked.case.state is CaseState.acknowledged
    assert acked.case.acknowledged_at == T0 + timedelta(minutes=2)
    assert acked.events == (EscalationAcknowledged(escalation_id="esc-1", responder_id="dr-a"),)
    assert acked.cancel_timers and acked.lifecycle is Action.acknowledge
    late = domain.on_ack_due(acked.case, 1, ROTATIONS, T0 + timedelta(minutes=5), POLICY)
    assert not late.changed


def test_acknowledging_twice_is_harmless_but_a_second_person_is_told_to_reassign() -> None:
    acked = domain.acknowledge(raised(FixedClock(T0)).case, "dr-a", T0)
    assert not domain.acknowledge(acked.case, "dr-a", T0).changed
    with pytest.raises(CaseConflict, match="reassign"):
        domain.acknowledge(acked.case, "dr-b", T0)


def test_resolving_an_unacknowledged_case_acknowledges_it_first() -> None:
    d = domain.resolve(raised(FixedClock(T0)).case, "dr-b", Outcome.answered, None, T0, True)
    assert [type(e) for e in d.events] == [EscalationAcknowledged, EscalationResolved]
    resolved = d.events[1]
    assert isinstance(resolved, EscalationResolved)
    assert (resolved.outcome, resolved.resolved_by, resolved.resume_outreach) == (
        Outcome.answered,
        "dr-b",
        True,
    )
    assert d.case.state is CaseState.resolved and d.lifecycle is Action.resolve
    assert d.audit[0].detail == {"outcome": Outcome.answered, "resume_outreach": True, "note": True}


@pytest.mark.parametrize(
    ("outcome", "resume"),
    [
        (Outcome.answered, True),
        (Outcome.no_action, True),
        (Outcome.booked, False),
        (Outcome.referred, False),
    ],
)
def test_outreach_resumes_by_default_only_when_the_patient_still_needs_the_recall(
    outcome: Outcome, resume: bool
) -> None:
    acked = domain.acknowledge(raised(FixedClock(T0)).case, "dr-a", T0).case
    d = domain.resolve(acked, "dr-a", outcome, None, T0, False)
    assert d.case.resume_outreach is resume
    assert domain.resolve(acked, "dr-a", outcome, not resume, T0, False).case.resume_outreach is (
        not resume
    )


def test_a_resolved_case_refuses_every_action() -> None:
    done = domain.resolve(raised(FixedClock(T0)).case, "dr-a", Outcome.booked, None, T0, False)
    acts: list[Callable[[Case], Decision]] = [
        lambda c: domain.acknowledge(c, "dr-a", T0),
        lambda c: domain.resolve(c, "dr-a", Outcome.answered, None, T0, False),
        lambda c: domain.reassign(c, "dr-a", ROTATIONS, T0, POLICY, responder_id="dr-b"),
    ]
    for act in acts:
        with pytest.raises(CaseConflict, match="already resolved"):
            act(done.case)


def test_reassigning_pages_the_named_person_and_restarts_the_sla() -> None:
    clock = FixedClock(T0)
    acked = domain.acknowledge(raised(clock).case, "dr-a", T0)
    clock.advance(timedelta(minutes=30))
    d = domain.reassign(acked.case, "dr-a", ROTATIONS, clock.now(), POLICY, responder_id="dr-c")
    assert d.page is not None and (d.page.attempt, d.page.target) == (2, Target("derm", "dr-c"))
    assert d.case.state is CaseState.paging and d.case.acknowledged_by is None
    assert d.ack_timer_at == clock.now() + timedelta(minutes=5)
    assert d.audit[0].actor == "dr-a" and d.audit[0].detail["from_responder_id"] == "dr-a"


def test_reassigning_to_another_rotation_pages_whoever_is_on_call_there() -> None:
    d = domain.reassign(
        raised(FixedClock(T0)).case, "nurse-1", ROTATIONS, T0, POLICY, rotation_id="manager"
    )
    assert d.page is not None and d.page.target == Target("manager", "pm-1")
    with pytest.raises(CaseConflict, match="no such rotation"):
        domain.reassign(d.case, "nurse-1", ROTATIONS, T0, POLICY, rotation_id="nowhere")


def test_a_case_with_nobody_to_page_waits_and_is_retried_after_the_sla() -> None:
    empty = {"derm": rot("derm", ())}
    d = domain.on_raised(new_case(), Route("r", "derm", T0), empty, T0, POLICY)
    assert d.page is None and d.case.state is CaseState.queued
    assert d.ack_timer_at == T0 + timedelta(minutes=5)
    assert "nobody_on_call" in [a.action for a in d.audit]
    later = T0 + timedelta(minutes=5)
    retried = domain.on_ack_due(d.case, 0, ROTATIONS, later, POLICY)  # someone was added
    assert retried.page is not None and retried.page.target == Target("derm", "dr-a")


def test_an_unrouted_case_is_rerouted_when_its_timer_fires() -> None:
    d = domain.on_raised(new_case(), None, ROTATIONS, T0, POLICY)
    assert d.case.rotation_id is None and "unrouted" in [a.action for a in d.audit]
    later = T0 + timedelta(minutes=5)
    retried = domain.on_ack_due(d.case, 0, ROTATIONS, later, POLICY, Route("new", "derm", later))
    assert retried.case.rotation_id == "derm" and retried.page is not None


def test_a_case_held_for_business_hours_is_paged_when_the_clinic_opens() -> None:
    opening = datetime(2026, 3, 4, 13, 0, tzinfo=UTC)
    case = new_case(Severity.normal, CaseType.clinical_question)
    d = domain.on_raised(case, Route("q", "derm", opening), ROTATIONS, T0, POLICY)
    assert d.page is None and d.page_timer_at == opening and d.case.state is CaseState.queued
    paged = domain.on_page_due(d.case, ROTATIONS, opening, POLICY)
    assert paged.page is not None and paged.ack_timer_at == opening + timedelta(minutes=60)
