"""One definition of "rebooked": a booking closes the segmenter's need exactly when metrics
counts the episode as rebooked.

Each case opens a real need through the segmenter's pure core (a chart of synthetic EHR
events), then books one service. The segmenter says whether that booking ended the need;
metrics, fed the very eligibility the segmenter emitted, a sequence, a message and the same
booking, says whether the episode is rebooked. They must agree, case by case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from services.metrics.domain.attribution import derive
from services.metrics.domain.history import PatientHistory, record
from services.segmenter.domain.params import ClinicParams, GeneralParams
from shared.events import Envelope, new_event
from shared.events.common import Channel, Purpose, Segment, ServiceLine
from shared.events.eligibility import PatientBecameEligible, PatientLeftSegment
from shared.events.messages import MessageSent
from shared.events.outreach import SequenceStarted
from shared.rebooking import closes, closing_lines
from tests.segmenter.factory import PARAMS, T0, Ehr, at, days, run

L = ServiceLine
NOW = T0 + timedelta(hours=3)


def chart(segment: Segment, line: ServiceLine, ehr: Ehr, *, documented: bool) -> list[Any]:
    """The EHR events that make a need of ``segment`` for ``line`` due at NOW."""
    today = T0.date()
    if segment is Segment.cancelled_not_rescheduled:
        return [ehr.cancelled("a-1", T0 + days(5), line, T0)]
    if segment is Segment.follow_up_not_booked:
        return [ehr.follow_up("f-1", today - days(170), line, due_on=today + days(7))]
    if segment is Segment.lapsed_patient:
        return [ehr.visit(f"v-{n}", at(today - days(n)), line) for n in (700, 600)]
    if segment is Segment.question_no_review:
        return [ehr.question("q-1", T0 - days(2), line=line if documented else None)]
    if segment is Segment.cosmetic_maintenance_due:
        return [ehr.visit("v-1", at(today - days(80)), line)]
    if segment is Segment.chronic_review_overdue:
        return [ehr.follow_up("f-1", today - days(200), line, interval_days=180, recurring=True)]
    if segment is Segment.consult_no_treatment:
        return [ehr.visit("v-c", at(today - days(30)), L.cosmetic_consult),
                ehr.recommended("r-1", "v-c", today - days(30), line)]  # fmt: skip
    assert segment is Segment.series_incomplete
    return [ehr.plan("p-1", line, 5, 2, 30, today - days(45))]


@dataclass(frozen=True)
class Case:
    segment: Segment
    line: ServiceLine
    booked: ServiceLine
    documented: bool = True

    def __str__(self) -> str:
        named = "" if self.documented else " (no service named)"
        return f"{self.segment.value}:{self.line.value}{named}<-{self.booked.value}"


CASES = [
    Case(Segment.cancelled_not_rescheduled, L.neurotoxin, L.neurotoxin),
    Case(Segment.cancelled_not_rescheduled, L.neurotoxin, L.skin_check),
    Case(Segment.cancelled_not_rescheduled, L.mohs, L.skin_cancer_surgery),
    Case(Segment.follow_up_not_booked, L.biopsy_follow_up, L.mohs),
    Case(Segment.follow_up_not_booked, L.biopsy_follow_up, L.acne),
    Case(Segment.follow_up_not_booked, L.acne, L.acne),
    Case(Segment.lapsed_patient, L.general_dermatology, L.neurotoxin),
    Case(Segment.lapsed_patient, L.skin_check, L.skin_check),
    Case(Segment.question_no_review, L.acne, L.acne),
    Case(Segment.question_no_review, L.acne, L.skin_check),
    Case(Segment.question_no_review, L.general_dermatology, L.laser, documented=False),
    Case(Segment.cosmetic_maintenance_due, L.neurotoxin, L.neurotoxin),
    Case(Segment.cosmetic_maintenance_due, L.neurotoxin, L.filler),
    Case(Segment.chronic_review_overdue, L.psoriasis_eczema, L.psoriasis_eczema),
    Case(Segment.chronic_review_overdue, L.psoriasis_eczema, L.skin_check),
    Case(Segment.consult_no_treatment, L.laser, L.laser),
    Case(Segment.consult_no_treatment, L.laser, L.chemical_peel),
    Case(Segment.series_incomplete, L.laser, L.laser),
    Case(Segment.series_incomplete, L.laser, L.neurotoxin),
]


def segmenter_closes(
    case: Case, params: ClinicParams
) -> tuple[PatientBecameEligible, bool, Envelope[Any]]:
    ehr = Ehr()
    state, out = run(chart(case.segment, case.line, ehr, documented=case.documented), NOW, params)
    [opened] = [p for p in out if isinstance(p, PatientBecameEligible)]
    assert opened.segment is case.segment, opened
    booking = ehr.booked("a-new", NOW + days(4), case.booked, NOW + timedelta(hours=1))
    _, after = run([booking], NOW + timedelta(hours=1), params, state)
    ended = [
        p for p in after if isinstance(p, PatientLeftSegment)
        and p.eligibility_id == opened.eligibility_id
    ]  # fmt: skip
    return opened, bool(ended), booking


def metrics_rebooked(opened: PatientBecameEligible, booking: Envelope[Any]) -> bool:
    key, clinic = booking.patient_key, booking.clinic_id

    def event(payload: Any, when: datetime) -> Envelope[Any]:
        return new_event(payload, clinic_id=clinic, patient_key=key, occurred_at=when)

    started = SequenceStarted(
        sequence_id="seq-1",
        eligibility_id=opened.eligibility_id,
        segment=opened.segment,
        kind=opened.kind,
        service_line=opened.service_line,
        workflow_key="wf",
        purpose=Purpose.care,
        steps_planned=3,
    )
    sent = MessageSent(
        message_id="m-1",
        sequence_id="seq-1",
        step=1,
        channel=Channel.sms,
        template_key="wf.1",
        purpose=Purpose.care,
    )
    history = PatientHistory(clinic_id=clinic, patient_key=key)
    for e in (
        event(opened, NOW),
        event(started, NOW),
        event(sent, NOW + timedelta(minutes=10)),
        booking,
    ):
        history = record(history, e)
    [episode] = derive(history, timedelta(days=30)).episodes
    return episode.outcome.bookings > 0


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_segmenter_closes_a_need_exactly_when_metrics_counts_it_rebooked(case: Case) -> None:
    opened, closed, booking = segmenter_closes(case, PARAMS)
    assert metrics_rebooked(opened, booking) is closed
    # The eligibility carries the rule, and it is the shared one.
    assert opened.rebooked_by is not None
    lines = closing_lines(case.segment, case.line, line_documented=case.documented)
    assert opened.rebooked_by.lines == lines
    assert closes(lines, case.booked) is closed


def test_the_cases_cover_every_segment_both_ways() -> None:
    seen = set()
    for c in CASES:
        lines = closing_lines(c.segment, c.line, line_documented=c.documented)
        seen.add((c.segment, closes(lines, c.booked)))
    assert {s for s, _ in seen} == set(Segment)
    assert {s for s, closed in seen if not closed} == set(Segment) - {Segment.lapsed_patient}


def test_a_lapsed_patients_any_booking_counts_and_a_cosmetic_top_up_only_for_itself() -> None:
    assert closing_lines(Segment.lapsed_patient, L.skin_check) is None
    assert closing_lines(Segment.cosmetic_maintenance_due, L.neurotoxin) == {L.neurotoxin}
    assert closing_lines(Segment.question_no_review, L.acne, line_documented=False) is None
    assert closing_lines(Segment.follow_up_not_booked, L.biopsy_follow_up) == {
        L.biopsy_follow_up, L.skin_cancer_surgery, L.mohs,
    }  # fmt: skip


def test_a_clinics_own_covered_by_travels_with_the_eligibility_and_metrics_follows_it() -> None:
    own = ClinicParams(general=GeneralParams(covered_by={L.acne: (L.isotretinoin,)}))
    case = Case(Segment.follow_up_not_booked, L.acne, L.isotretinoin)
    opened, closed, booking = segmenter_closes(case, own)
    assert closed and metrics_rebooked(opened, booking)
    # Without what the eligibility carries, the default rule would not have counted it.
    bare = opened.model_copy(update={"rebooked_by": None})
    assert not metrics_rebooked(bare, booking)
