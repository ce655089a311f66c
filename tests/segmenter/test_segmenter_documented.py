"""What the segmenter documents for the words, the plan's purpose, priority and recovery."""

from __future__ import annotations

from datetime import date, datetime

from shared.events.common import Purpose, Segment, ServiceLine
from shared.events.ehr import QuestionChannel, Sentiment, TreatmentPlanUpdated
from shared.events.eligibility import PatientBecameEligible, ReasonSource
from shared.events.escalations import CaseType, EscalationRaised
from tests.segmenter.factory import Ehr, at, run

L = ServiceLine


def eligible(events: list, now: datetime) -> list[PatientBecameEligible]:  # type: ignore[type-arg]
    _, out = run(events, now)
    return [p for p in out if isinstance(p, PatientBecameEligible)]


def test_a_follow_up_recommended_at_a_visit_documents_the_visit_and_its_due_date() -> None:
    ehr = Ehr()
    [e] = eligible(
        [
            ehr.visit("v-0", at("2026-03-02"), L.skin_check),
            ehr.follow_up("f-1", "2026-03-02", L.skin_check, due_on="2026-09-01"),
        ],
        at("2026-08-18"),
    )
    assert e.documented is not None
    assert (e.documented.source, e.documented.recorded_on, e.documented.due_on) == (
        ReasonSource.visit,
        date(2026, 3, 2),
        date(2026, 9, 1),
    )
    assert e.documented.recorded_at == at("2026-03-02")


def test_a_plan_written_outside_a_visit_is_documented_as_a_treatment_plan() -> None:
    ehr = Ehr()
    fu = ehr.follow_up("f-1", "2026-03-02", L.acne, due_on="2026-04-01", visit_id=None)
    [e] = eligible([fu], at("2026-03-20"))
    assert e.documented is not None and e.documented.source is ReasonSource.treatment_plan


def test_questions_are_documented_by_how_the_patient_asked() -> None:
    for channel, source in (
        (QuestionChannel.portal, ReasonSource.portal_question),
        (QuestionChannel.email, ReasonSource.portal_question),
        (QuestionChannel.phone, ReasonSource.phone_question),
        (QuestionChannel.in_person, ReasonSource.question),
    ):
        ehr = Ehr()
        asked = ehr.question("q-1", at("2026-03-03", 18), within=7)
        asked = ehr.event(asked.payload.model_copy(update={"received_via": channel}))
        [e] = eligible([asked], at("2026-03-04"))
        assert e.documented is not None and e.documented.source is source
        assert e.documented.due_on == date(2026, 3, 10)


def test_a_cancellation_a_practice_cancellation_and_a_no_show_read_as_what_they_were() -> None:
    start = at("2026-03-10")
    cancelled = Ehr().cancelled("a-1", start, L.acne, at("2026-03-03"))
    [e] = eligible([cancelled], at("2026-03-03", 18))
    assert e.documented is not None and e.documented.source is ReasonSource.cancellation
    assert (e.documented.recorded_at, e.documented.due_on) == (start, None)
    by_us = Ehr().cancelled("a-1", start, L.acne, at("2026-03-03"), by="practice")  # type: ignore[arg-type]
    [e] = eligible([by_us], at("2026-03-03", 18))
    assert e.documented is not None
    assert e.documented.source is ReasonSource.practice_cancellation
    missed = Ehr().no_show("a-1", start, L.acne, at("2026-03-10", 16))
    [e] = eligible([missed], at("2026-03-10", 19))
    assert e.documented is not None and e.documented.source is ReasonSource.no_show


def test_a_laser_series_follows_its_plans_documented_purpose() -> None:
    def series(purpose: Purpose | None) -> PatientBecameEligible:
        ehr = Ehr()
        plan = ehr.plan("pl-1", L.laser, 5, 3, 35, "2026-01-20").payload
        documented = TreatmentPlanUpdated.model_validate({**plan.model_dump(), "purpose": purpose})
        [e] = eligible([ehr.event(documented)], at("2026-03-03"))
        return e

    assert series(Purpose.care).needs_marketing_consent is False
    assert series(Purpose.marketing).needs_marketing_consent is True
    assert series(None).needs_marketing_consent is True  # not documented: the line's usual
    peel = series(Purpose.care)
    assert peel.documented is not None and peel.documented.source is ReasonSource.series
    assert peel.documented.due_on == date(2026, 2, 24)


def test_a_due_series_does_not_take_over_from_an_open_cancellation() -> None:
    ehr = Ehr()
    events = [
        ehr.plan("pl-1", L.phototherapy, 24, 5, 3, "2026-02-20"),
        ehr.cancelled("a-1", at("2026-03-10"), L.acne, at("2026-03-03")),
    ]
    primary = eligible(events, at("2026-03-03", 18))
    assert [e.segment for e in primary] == [Segment.cancelled_not_rescheduled]


def test_a_lapsed_patient_whose_last_visit_was_poor_goes_to_a_person_first() -> None:
    ehr = Ehr()
    events = [
        ehr.visit("v-1", at("2024-05-01"), L.skin_check),
        ehr.visit("v-2", at("2024-09-09"), L.skin_check),
        ehr.feedback("fb-1", at("2024-09-10"), Sentiment.poor, visit_id="v-2"),
    ]
    _, out = run(events, at("2026-03-11"))
    assert [type(p) for p in out] == [EscalationRaised]
    assert out[0].case_type is CaseType.poor_experience  # type: ignore[attr-defined]
