"""Every segment rule on hand-written journeys, with the cases a dermatology practice raises."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.segmenter.domain import Journey, PatientState, Status
from services.segmenter.domain.findings import Finding
from services.segmenter.domain.params import ClinicParams
from services.segmenter.domain.rules import RULES, evaluate_all
from shared.events import Envelope
from shared.events.common import ClinicalUrgency, Segment, ServiceLine, SourceRecordKind
from shared.events.ehr import CancellationReason, Initiator, PlanStatus
from shared.events.eligibility import LeftReason, PatientBecameEligible, PatientLeftSegment
from tests.segmenter.factory import PARAMS, Ehr, at, days, later, run

L = ServiceLine


def journey(*events: Envelope[Any]) -> Journey:
    j = Journey(events[0].patient_key)
    for e in events:
        j, _ = j.apply(e)
    return j


def found(segment: Segment, *events: Envelope[Any], params: ClinicParams = PARAMS) -> list[Finding]:
    return list(evaluate_all(journey(*events), params)[segment].findings)


def only(segment: Segment, *events: Envelope[Any], params: ClinicParams = PARAMS) -> Finding:
    (finding,) = found(segment, *events, params=params)
    return finding


def eligible(out: list[Any]) -> list[PatientBecameEligible]:
    return [p for p in out if isinstance(p, PatientBecameEligible)]


def left(out: list[Any]) -> list[PatientLeftSegment]:
    return [p for p in out if isinstance(p, PatientLeftSegment)]


ehr = Ehr()


# --- cancelled_not_rescheduled ----------------------------------------------------------------


def test_a_cancellation_becomes_due_two_hours_after_it_was_recorded() -> None:
    cancel = ehr.cancelled("a-1", at("2026-02-10"), L.skin_check, at("2026-02-01"))
    f = only(Segment.cancelled_not_rescheduled, cancel)
    assert f.due_at == at("2026-02-01", 17)
    assert f.status(at("2026-02-01", 16)) is Status.upcoming
    assert f.status(at("2026-02-01", 18)) is Status.due
    assert f.reason == (
        "Skin check appointment on 2026-02-10 was cancelled; nothing is booked to replace it"
    )
    assert f.source.kind is SourceRecordKind.appointment and f.source.id == "a-1"


def test_a_patient_who_cancels_then_rebooks_with_another_provider_is_not_chased() -> None:
    events = [
        ehr.cancelled("a-1", at("2026-02-10"), L.skin_check, at("2026-02-01"), provider="dr-1"),
        ehr.booked("a-2", at("2026-02-20"), L.skin_check, at("2026-02-02"), provider="dr-7"),
    ]
    f = only(Segment.cancelled_not_rescheduled, *events)
    assert f.ended is not None and f.ended.reason is LeftReason.booked
    assert f.ended.by is not None and f.ended.by.id == "a-2"


def test_a_rebooking_leaves_the_segment_immediately_with_the_booking_as_source() -> None:
    cancel = ehr.cancelled("a-1", at("2026-02-10"), L.acne, at("2026-02-01"))
    state, out = run([cancel], at("2026-02-01", 18))
    assert [e.segment for e in eligible(out)] == [Segment.cancelled_not_rescheduled]
    rebook = ehr.booked("a-2", at("2026-02-25"), L.acne, at("2026-02-03"))
    state, out = run([rebook], at("2026-02-03", 18), state=state)
    (gone,) = left(out)
    assert gone.reason is LeftReason.booked and gone.source_record.id == "a-2"  # type: ignore[union-attr]
    assert state.live == {}


def test_a_booking_for_another_service_does_not_replace_a_cancellation() -> None:
    events = [
        ehr.cancelled("a-1", at("2026-02-10"), L.skin_check, at("2026-02-01")),
        ehr.booked("a-2", at("2026-02-20"), L.neurotoxin, at("2026-02-02")),
    ]
    assert only(Segment.cancelled_not_rescheduled, *events).ended is None


def test_a_no_show_is_recorded_as_missed_from_its_start() -> None:
    f = only(
        Segment.cancelled_not_rescheduled,
        ehr.no_show("a-1", at("2026-02-10", 9), L.mohs, at("2026-02-09")),
    )
    assert "was missed (no-show)" in f.reason
    assert f.due_at == at("2026-02-10", 11)


def test_a_cancellation_entered_in_error_never_makes_a_patient_eligible() -> None:
    f = only(
        Segment.cancelled_not_rescheduled,
        ehr.cancelled(
            "a-1",
            at("2026-02-10"),
            L.skin_check,
            at("2026-02-01"),
            reason=CancellationReason.entered_in_error,
        ),
    )
    assert f.ended is not None and f.ended.reason is LeftReason.record_corrected


def test_a_later_missed_appointment_supersedes_an_earlier_one_for_the_same_care() -> None:
    events = [
        ehr.cancelled("a-1", at("2026-02-10"), L.acne, at("2026-02-01")),
        ehr.booked("a-2", at("2026-03-01"), L.acne, at("2026-02-02")),
        ehr.cancelled("a-2", at("2026-03-01"), L.acne, at("2026-02-20"), version=2),
    ]
    by_id = {f.source.id: f for f in found(Segment.cancelled_not_rescheduled, *events)}
    assert by_id["a-1"].ended is not None and by_id["a-1"].ended.reason is LeftReason.superseded
    assert by_id["a-2"].ended is None


def test_the_scheduler_note_is_for_staff_and_never_in_the_reason() -> None:
    note = "patient upset about biopsy result"
    f = only(
        Segment.cancelled_not_rescheduled,
        ehr.cancelled("a-1", at("2026-02-10"), L.skin_check, at("2026-02-01"), note=note),
    )
    assert note not in f.reason and ("scheduler note (staff only)", note) in f.details


def test_a_practice_cancellation_says_so() -> None:
    f = only(
        Segment.cancelled_not_rescheduled,
        ehr.cancelled(
            "a-1",
            at("2026-02-10"),
            L.skin_check,
            at("2026-02-01"),
            by=Initiator.practice,
            reason=CancellationReason.provider_unavailable,
        ),
    )
    assert "was cancelled by the practice" in f.reason


# --- follow_up_not_booked ---------------------------------------------------------------------


def test_a_follow_up_surfaces_fourteen_days_before_it_is_due() -> None:
    f = only(
        Segment.follow_up_not_booked,
        ehr.follow_up("f-1", "2026-01-05", L.skin_check, interval_days=182),
    )
    assert f.opens_on == date(2026, 7, 6) - days(14)
    assert f.reason == (
        "Follow-up for skin check in 6 months recommended on 2026-01-05 (due 2026-07-06); "
        "nothing is booked for it"
    )
    assert f.closes_on == date(2026, 7, 6) + days(90)
    assert f.kind.value == "recall"


def test_a_follow_up_booked_for_the_wrong_service_is_still_open_and_staff_see_why() -> None:
    events = [
        ehr.follow_up("f-1", "2026-01-05", L.biopsy_follow_up, due_on="2026-01-19"),
        ehr.booked("a-1", at("2026-01-20"), L.neurotoxin, at("2026-01-06")),
    ]
    f = only(Segment.follow_up_not_booked, *events)
    assert f.ended is None
    assert dict(f.details)["booked for other services (these do not cover it)"] == (
        "a-1 (neurotoxin)"
    )


def test_a_follow_up_is_met_by_a_booking_for_a_service_that_covers_it() -> None:
    events = [
        ehr.follow_up("f-1", "2026-01-05", L.biopsy_follow_up, due_on="2026-01-19"),
        ehr.booked("a-1", at("2026-01-20"), L.mohs, at("2026-01-06")),
    ]
    assert only(Segment.follow_up_not_booked, *events).ended is not None


def test_the_visit_that_made_the_recommendation_does_not_meet_it() -> None:
    events = [
        ehr.visit("v-0", at("2026-01-05"), L.skin_check),
        ehr.follow_up("f-1", "2026-01-05", L.skin_check, interval_days=90, visit_id="v-0"),
    ]
    assert only(Segment.follow_up_not_booked, *events).ended is None


def test_a_later_visit_for_that_care_meets_the_follow_up() -> None:
    events = [
        ehr.follow_up("f-1", "2026-01-05", L.skin_check, interval_days=90),
        ehr.visit("v-1", at("2026-04-01"), L.skin_check),
    ]
    f = only(Segment.follow_up_not_booked, *events)
    assert f.ended is not None and f.ended.reason is LeftReason.visit_completed


def test_documented_urgency_is_kept_and_never_raised() -> None:
    soon = only(
        Segment.follow_up_not_booked,
        ehr.follow_up(
            "f-1", "2026-01-05", L.skin_check, interval_days=30, urgency=ClinicalUrgency.soon
        ),
    )
    assert soon.urgency is ClinicalUrgency.soon
    capped = ClinicParams.model_validate({"general": {"urgency_cap": "routine"}})
    lowered = only(
        Segment.follow_up_not_booked,
        ehr.follow_up(
            "f-1", "2026-01-05", L.skin_check, interval_days=30, urgency=ClinicalUrgency.urgent
        ),
        params=capped,
    )
    assert lowered.urgency is ClinicalUrgency.routine


def test_the_plan_note_reaches_staff_details_but_never_the_eligibility_reason() -> None:
    note = "recheck atypical naevus left shoulder"
    fu = ehr.follow_up("f-1", "2026-01-05", L.skin_check, interval_days=30, note=note)
    _, out = run([fu], at("2026-03-01"))
    (event,) = eligible(out)
    assert note not in event.model_dump_json()
    assert ("plan note (staff only)", note) in only(Segment.follow_up_not_booked, fu).details


# --- series_incomplete ------------------------------------------------------------------------


def test_a_laser_series_with_one_session_missed_is_found_a_week_after_it_was_due() -> None:
    plan = ehr.plan("pl-1", L.laser, planned=5, done=2, interval_days=28, last_on="2026-04-03")
    f = only(Segment.series_incomplete, plan)
    assert f.opens_on == date(2026, 5, 1) + days(7)
    assert f.reason == (
        "Laser series: 2 of 5 sessions done, the last on 2026-04-03; the next was due "
        "2026-05-01 (every 4 weeks) and is not booked"
    )
    assert f.needs_marketing_consent  # laser counts as cosmetic by default
    assert f.source.kind is SourceRecordKind.treatment_plan


def test_a_booked_next_session_linked_to_the_plan_meets_the_series() -> None:
    events = [
        ehr.plan("pl-1", L.laser, 5, 2, 28, "2026-04-03"),
        ehr.booked(
            "a-9", at("2026-05-02"), L.general_dermatology, at("2026-04-04"), plan_id="pl-1"
        ),
    ]
    f = only(Segment.series_incomplete, *events)
    assert f.ended is not None and f.ended.reason is LeftReason.booked


def test_a_completed_or_cancelled_plan_ends_the_series_need() -> None:
    done = only(Segment.series_incomplete, ehr.plan("pl-1", L.laser, 3, 3, 28, "2026-04-03"))
    stopped = only(
        Segment.series_incomplete,
        ehr.plan("pl-1", L.laser, 3, 1, 28, "2026-04-03", status=PlanStatus.cancelled),
    )
    assert done.ended is not None and done.ended.reason is LeftReason.plan_completed
    assert stopped.ended is not None and stopped.ended.reason is LeftReason.plan_cancelled


def test_a_plan_with_no_session_done_is_left_to_consult_no_treatment() -> None:
    result = evaluate_all(journey(ehr.plan("pl-1", L.laser, 3, 0, 28, None)), PARAMS)[
        Segment.series_incomplete
    ]
    assert result.findings == () and "no session done yet" in result.notes[0]


# --- cosmetic_maintenance_due -----------------------------------------------------------------


def test_neurotoxin_maintenance_surfaces_two_weeks_before_its_90_day_window() -> None:
    f = only(Segment.cosmetic_maintenance_due, ehr.visit("v-1", at("2026-01-10"), L.neurotoxin))
    assert f.opens_on == date(2026, 4, 10) - days(14)
    assert f.reason == (
        "Neurotoxin last given on 2026-01-10; its usual 3-month maintenance window opens 2026-04-10"
    )
    assert f.needs_marketing_consent


def test_filler_and_neurotoxin_on_one_visit_are_two_needs_with_their_own_intervals() -> None:
    both = found(
        Segment.cosmetic_maintenance_due, ehr.visit("v-1", at("2026-01-10"), L.neurotoxin, L.filler)
    )
    by_line = {f.service_line: f for f in both}
    assert by_line[L.filler].opens_on == date(2026, 1, 10) + days(270 - 14)
    assert len({f.need_id for f in both}) == 2


def test_a_clinic_can_change_which_services_have_maintenance_and_how_often() -> None:
    params = ClinicParams.model_validate(
        {"cosmetic_maintenance_due": {"maintenance_days": {"neurotoxin": 120}}}
    )
    f = only(
        Segment.cosmetic_maintenance_due,
        ehr.visit("v-1", at("2026-01-10"), L.neurotoxin),
        params=params,
    )
    assert f.opens_on == date(2026, 1, 10) + days(120 - 14)


# --- chronic_review_overdue -------------------------------------------------------------------


def test_a_standing_review_is_overdue_fourteen_days_after_its_interval_from_the_last_review() -> (
    None
):
    events = [
        ehr.follow_up("f-1", "2025-06-01", L.psoriasis_eczema, interval_days=180, recurring=True),
        ehr.visit("v-2", at("2025-09-01"), L.psoriasis_eczema),
    ]
    f = only(Segment.chronic_review_overdue, *events)
    assert f.opens_on == date(2025, 9, 1) + days(180 + 14)
    assert "last on 2025-09-01" in f.reason
    assert f.renewed is not None and f.renewed.by is not None and f.renewed.by.id == "v-2"


def test_a_newer_standing_plan_supersedes_the_older_one_for_the_same_care() -> None:
    events = [
        ehr.follow_up("f-1", "2025-01-01", L.isotretinoin, interval_days=30, recurring=True),
        ehr.follow_up("f-2", "2025-03-01", L.isotretinoin, interval_days=28, recurring=True),
    ]
    by_id = {f.source.id: f for f in found(Segment.chronic_review_overdue, *events)}
    assert by_id["f-1"].ended is not None and by_id["f-1"].ended.reason is LeftReason.superseded
    assert by_id["f-2"].ended is None


# --- question_no_review, consult_no_treatment, lapsed_patient ----------------------------------


def test_a_question_with_a_recommended_review_surfaces_the_next_day_if_nothing_is_booked() -> None:
    f = only(Segment.question_no_review, ehr.question("q-1", at("2026-02-01", 10)))
    assert f.opens_on == date(2026, 2, 2) and f.closes_on == date(2026, 2, 1) + days(7 + 14)
    assert "portal question of 2026-02-01" in f.reason
    assert f.service_line is L.general_dermatology


def test_a_question_without_a_recommended_review_is_no_need() -> None:
    assert (
        found(Segment.question_no_review, ehr.question("q-1", at("2026-02-01"), review=False)) == []
    )


def test_a_consult_whose_treatment_has_not_started_surfaces_after_21_days_or_sooner() -> None:
    plain = only(
        Segment.consult_no_treatment, ehr.recommended("r-1", "v-c", "2026-02-01", L.chemical_peel)
    )
    quick = only(
        Segment.consult_no_treatment,
        ehr.recommended("r-1", "v-c", "2026-02-01", L.isotretinoin, start_within_days=10),
    )
    assert plain.opens_on == date(2026, 2, 22)
    assert quick.opens_on == date(2026, 2, 11)
    assert plain.needs_marketing_consent and not quick.needs_marketing_consent


def test_a_started_treatment_plan_ends_the_consult_need() -> None:
    events = [
        ehr.recommended("r-1", "v-c", "2026-02-01", L.laser),
        ehr.plan("pl-1", L.laser, 4, 1, 28, "2026-02-15"),
    ]
    f = only(Segment.consult_no_treatment, *events)
    assert f.ended is not None and f.ended.by is not None and f.ended.by.id == "pl-1"


def test_a_patient_with_two_visits_and_none_for_18_months_is_lapsed() -> None:
    events = [
        ehr.visit("v-1", at("2024-01-10"), L.skin_check),
        ehr.visit("v-2", at("2024-07-10"), L.acne),
    ]
    f = only(Segment.lapsed_patient, *events)
    assert f.opens_on == date(2024, 7, 10) + days(548)
    assert f.reason == (
        "2 visits on record, the last on 2024-07-10 (acne care); no visit for 18 months and "
        "nothing is booked"
    )
    assert f.kind.value == "reactivation" and f.service_line is L.acne


def test_one_visit_is_not_enough_to_be_lapsed_and_a_booking_prevents_it() -> None:
    result = evaluate_all(journey(ehr.visit("v-1", at("2024-01-10"), L.skin_check)), PARAMS)
    assert result[Segment.lapsed_patient].findings == ()
    booked = only(
        Segment.lapsed_patient,
        ehr.visit("v-1", at("2024-01-10"), L.skin_check),
        ehr.visit("v-2", at("2024-02-10"), L.skin_check),
        ehr.booked("a-1", at("2026-05-01"), L.skin_check, at("2026-01-01")),
    )
    assert booked.ended is not None and booked.ended.reason is LeftReason.booked


# --- the patient as a whole -------------------------------------------------------------------


def test_a_deceased_patient_leaves_every_segment_and_is_found_in_none() -> None:
    state, out = run(
        [ehr.cancelled("a-1", at("2026-02-10"), L.skin_check, at("2026-02-01"))], at("2026-02-02")
    )
    assert eligible(out)
    state, out = run([ehr.patient(at("2026-02-03"), deceased=True)], at("2026-02-03"), state=state)
    (gone,) = left(out)
    assert gone.reason is LeftReason.deceased and state.live == {}
    state, out = later(state, at("2026-08-01"))
    assert out == [] and state.live == {}


def test_an_inactive_record_leaves_with_its_own_reason() -> None:
    state, _ = run(
        [ehr.cancelled("a-1", at("2026-02-10"), L.acne, at("2026-02-01"))], at("2026-02-02")
    )
    _, out = run([ehr.patient(at("2026-02-03"), active=False)], at("2026-02-03"), state=state)
    assert [e.reason for e in left(out)] == [LeftReason.patient_inactive]


def test_every_rule_is_a_named_object_for_its_segment() -> None:
    from services.segmenter.domain import rules

    for segment in Segment:
        assert getattr(rules, segment.value) is RULES[segment]
        assert RULES[segment].summary


def test_a_window_that_closed_emits_window_closed_when_time_passes() -> None:
    state, out = run(
        [ehr.cancelled("a-1", at("2026-02-10"), L.acne, at("2026-02-01"))], at("2026-02-02")
    )
    assert eligible(out)
    state, out = later(state, at("2026-03-05"))
    assert [e.reason for e in left(out)] == [LeftReason.window_closed]
    assert isinstance(state, PatientState) and state.live == {}
