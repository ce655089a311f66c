"""Memberships: one primary segment at a time, holds with reasons, service recovery first."""

from __future__ import annotations

from typing import Any

from services.segmenter.domain import ClinicParams
from services.segmenter.domain.memberships import HOLD_RECOVERY, MembershipStatus, held_behind
from services.segmenter.domain.recovery import SUMMARY
from shared.events.common import ClinicalUrgency, Segment, ServiceLine
from shared.events.ehr import Sentiment
from shared.events.eligibility import LeftReason, PatientBecameEligible, PatientLeftSegment
from shared.events.escalations import CaseType, EscalationRaised, EscalationResolved, Outcome
from tests.segmenter.factory import Ehr, at, later, run

L = ServiceLine
ehr = Ehr("clinic-t:pt-overlap")


def kinds(out: list[Any]) -> list[tuple[str, str]]:
    return [(type(p).__name__, getattr(p, "segment", getattr(p, "case_type", ""))) for p in out]


def by_segment(state: Any) -> dict[Segment, Any]:
    return {m.segment: m for m in state.memberships.values()}


def test_a_clinical_need_is_primary_over_a_cosmetic_one_and_the_other_is_held_with_a_reason() -> (
    None
):
    events = [
        ehr.visit("v-1", at("2026-01-10"), L.neurotoxin),
        ehr.follow_up("f-1", "2026-03-01", L.skin_check, due_on="2026-04-01"),
    ]
    state, out = run(events, at("2026-04-01"))
    assert [p.segment for p in out] == [Segment.follow_up_not_booked]
    ms = by_segment(state)
    assert ms[Segment.follow_up_not_booked].status is MembershipStatus.open
    cosmetic = ms[Segment.cosmetic_maintenance_due]
    assert cosmetic.status is MembershipStatus.held
    assert cosmetic.hold_reason == held_behind(Segment.follow_up_not_booked)


def test_a_held_need_surfaces_when_the_primary_ends() -> None:
    events = [
        ehr.visit("v-1", at("2026-01-10"), L.neurotoxin),
        ehr.follow_up("f-1", "2026-03-01", L.skin_check, due_on="2026-04-01"),
    ]
    state, _ = run(events, at("2026-04-01"))
    booked = ehr.booked("a-1", at("2026-04-20"), L.skin_check, at("2026-04-02"))
    state, out = run([booked], at("2026-04-02"), state=state)
    assert kinds(out) == [
        ("PatientLeftSegment", Segment.follow_up_not_booked),
        ("PatientBecameEligible", Segment.cosmetic_maintenance_due),
    ]
    assert state.primary is not None and state.primary.segment is Segment.cosmetic_maintenance_due


def test_a_clinical_need_that_comes_due_later_takes_over_from_a_cosmetic_primary() -> None:
    state, out = run([ehr.visit("v-1", at("2026-01-10"), L.neurotoxin)], at("2026-04-01"))
    (first,) = out
    assert isinstance(first, PatientBecameEligible)
    fu = ehr.follow_up("f-1", "2026-03-01", L.skin_check, due_on="2026-04-05")
    state, out = run([fu], at("2026-04-02"), state=state)
    assert kinds(out) == [
        ("PatientLeftSegment", Segment.cosmetic_maintenance_due),
        ("PatientBecameEligible", Segment.follow_up_not_booked),
    ]
    assert isinstance(out[0], PatientLeftSegment) and out[0].reason is LeftReason.superseded
    # When the clinical need is met, the cosmetic one comes back under a NEW eligibility id.
    booked = ehr.booked("a-1", at("2026-04-20"), L.skin_check, at("2026-04-03"))
    state, out = run([booked], at("2026-04-03"), state=state)
    again = [p for p in out if isinstance(p, PatientBecameEligible)]
    assert [p.segment for p in again] == [Segment.cosmetic_maintenance_due]
    assert again[0].eligibility_id == f"{first.eligibility_id}-2"


def test_the_clinic_priority_orders_two_clinical_needs() -> None:
    events = [
        ehr.cancelled("a-1", at("2026-02-10"), L.acne, at("2026-02-01")),
        ehr.question("q-1", at("2026-02-01"), line=L.rosacea),
    ]
    _, out = run(events, at("2026-02-03"))
    assert [p.segment for p in out] == [Segment.cancelled_not_rescheduled]
    order = [
        Segment.question_no_review,
        *[s for s in ClinicParams().general.priority if s is not Segment.question_no_review],
    ]
    params = ClinicParams.model_validate({"general": {"priority": [s.value for s in order]}})
    _, out = run(events, at("2026-02-03"), params=params)
    assert [p.segment for p in out] == [Segment.question_no_review]


def test_urgency_outranks_the_segment_order() -> None:
    events = [
        ehr.cancelled("a-1", at("2026-02-10"), L.acne, at("2026-02-01")),
        ehr.recommended("r-1", "v-c", "2026-01-01", L.isotretinoin, urgency=ClinicalUrgency.soon),
    ]
    _, out = run(events, at("2026-02-03"))
    assert [p.segment for p in out] == [Segment.consult_no_treatment]


def test_a_poor_experience_goes_to_a_person_first_and_holds_every_rebooking_message() -> None:
    state, out = run(
        [ehr.cancelled("a-1", at("2026-02-10"), L.skin_check, at("2026-02-01"))], at("2026-02-02")
    )
    assert kinds(out) == [("PatientBecameEligible", Segment.cancelled_not_rescheduled)]
    poor = ehr.feedback("fb-1", at("2026-02-03"), Sentiment.poor, visit_id="v-x")
    state, out = run([poor], at("2026-02-03"), state=state)
    raised, gone = out
    assert isinstance(raised, EscalationRaised) and raised.case_type is CaseType.poor_experience
    assert raised.summary == SUMMARY
    assert isinstance(gone, PatientLeftSegment) and gone.reason is LeftReason.service_recovery
    (held,) = state.memberships.values()
    assert held.status is MembershipStatus.held and held.hold_reason == HOLD_RECOVERY
    # Nothing surfaces, and the case is not raised twice, while recovery is open.
    state, out = later(state, at("2026-02-04"))
    assert out == []
    state, out = run([poor], at("2026-02-05"), state=state)
    assert out == []
    # The person resolves the case and lets outreach resume: the need surfaces under a new id.
    resolved = ehr.event(
        EscalationResolved(
            escalation_id=raised.escalation_id,
            outcome=Outcome.no_action,
            resolved_by="staff-1",
            resume_outreach=True,
        ),
        at("2026-02-06"),
    )
    state, out = run([resolved], at("2026-02-06"), state=state)
    (back,) = out
    assert isinstance(back, PatientBecameEligible) and back.eligibility_id.endswith("-2")


def test_recovery_also_lifts_when_the_patient_records_better_feedback_later() -> None:
    events = [
        ehr.cancelled("a-1", at("2026-02-10"), L.acne, at("2026-02-01")),
        ehr.feedback("fb-1", at("2026-02-02"), Sentiment.poor),
        ehr.feedback("fb-2", at("2026-02-04"), Sentiment.good),
    ]
    state, out = run(events, at("2026-02-05"))
    assert kinds(out) == [("PatientBecameEligible", Segment.cancelled_not_rescheduled)]
    assert not state.recovery_hold


def test_a_poor_experience_opens_recovery_however_old_it_is() -> None:
    _, out = run([ehr.feedback("fb-1", at("2024-01-01"), Sentiment.poor)], at("2026-02-05"))
    assert [type(p) for p in out] == [EscalationRaised]


def test_a_clinic_may_set_a_look_back_for_poor_experiences() -> None:
    params = ClinicParams.model_validate({"general": {"recovery_lookback_days": 365}})
    events = [ehr.feedback("fb-1", at("2024-01-01"), Sentiment.poor)]
    _, out = run(events, at("2026-02-05"), params=params)
    assert out == []


def test_a_met_need_that_comes_back_is_emitted_under_a_new_eligibility_id() -> None:
    fu = ehr.follow_up("f-1", "2026-01-05", L.skin_check, due_on="2026-02-01")
    state, out = run([fu], at("2026-02-01"))
    (first,) = out
    book = ehr.booked("a-1", at("2026-02-10"), L.skin_check, at("2026-02-02"))
    state, _ = run([book], at("2026-02-02"), state=state)
    cancel = ehr.cancelled("a-1", at("2026-02-10"), L.skin_check, at("2026-02-03"), version=2)
    state, out = run([cancel], at("2026-02-03"), state=state)
    (again,) = [p for p in out if isinstance(p, PatientBecameEligible)]
    assert again.segment is Segment.follow_up_not_booked
    assert again.eligibility_id == f"{first.eligibility_id}-2"  # type: ignore[union-attr]
    # the cancellation itself is held behind the follow-up, not lost
    cnr = by_segment(state)[Segment.cancelled_not_rescheduled]
    assert cnr.status is MembershipStatus.upcoming  # due two hours after it was recorded


def test_a_recurring_review_met_by_a_visit_leaves_as_visit_completed_and_comes_back() -> None:
    fu = ehr.follow_up("f-1", "2025-01-01", L.psoriasis_eczema, interval_days=90, recurring=True)
    state, out = run([fu], at("2025-04-20"))
    (first,) = out
    state, out = run(
        [ehr.visit("v-1", at("2025-04-25"), L.psoriasis_eczema)], at("2025-04-25"), state=state
    )
    (gone,) = out
    assert isinstance(gone, PatientLeftSegment) and gone.reason is LeftReason.visit_completed
    assert gone.source_record is not None and gone.source_record.id == "v-1"
    state, out = later(state, at("2025-08-10"))
    (back,) = out
    assert isinstance(back, PatientBecameEligible)
    assert back.eligibility_id == f"{first.eligibility_id}-2"  # type: ignore[union-attr]


def test_the_same_event_twice_changes_nothing_the_second_time() -> None:
    cancel = ehr.cancelled("a-1", at("2026-02-10"), L.acne, at("2026-02-01"))
    state, out = run([cancel], at("2026-02-02"))
    again, out2 = run([cancel], at("2026-02-02"), state=state)
    assert out and out2 == [] and again == state
