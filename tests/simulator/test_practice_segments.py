"""The generated practice, read by the segmenter's own rules with their default parameters.

The records are turned into the events ingest would publish (the service line straight from
the catalogue, skipping FHIR/HL7), fed through the pure decision, and re-evaluated as days pass.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.segmenter.domain import ClinicParams, PatientState, decide_batch, evaluate
from shared.events import Envelope, Payload, new_event
from shared.events.common import CodeSystem, EhrSource, Initiator, ServicePerformed, SourceSystem
from shared.events.ehr import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentKept,
    AppointmentNoShow,
    ExperienceFeedbackRecorded,
    FollowUpRecommended,
    PatientQuestionReceived,
    PlanStatus,
    QuestionChannel,
    Sentiment,
    TreatmentPlanUpdated,
    TreatmentRecommended,
    VisitCompleted,
)
from shared.events.eligibility import PatientBecameEligible
from simulator.model import (
    AppointmentRecord,
    AppointmentStatus,
    Clinic,
    FeedbackRecord,
    Happening,
    Journey,
    Practice,
    QuestionRecord,
    VisitRecord,
)
from simulator.practice import build_practice

START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
_APPOINTMENT_EVENTS = {
    AppointmentStatus.booked: AppointmentBooked,
    AppointmentStatus.fulfilled: AppointmentKept,
    AppointmentStatus.noshow: AppointmentNoShow,
    AppointmentStatus.cancelled: AppointmentCancelled,
}


def _events(h: Happening, clinic: Clinic) -> list[Payload]:
    def src(record_id: str, version: int = 1) -> EhrSource:
        return EhrSource(
            system=SourceSystem.json,
            record_id=record_id,
            source_version=str(version),
            source_updated_at=h.at,
        )

    def line(code: str) -> Any:
        return clinic.service(code).service_line

    r = h.record
    if isinstance(r, AppointmentRecord):
        extra = {"cancelled_by": Initiator(r.cancelled_by)} if r.cancelled_by else {}
        return [
            _APPOINTMENT_EVENTS[r.status](
                source=src(r.appointment_id, r.version),
                appointment_id=r.appointment_id,
                start=r.start,
                service_line=line(r.service_code),
                provider_id=r.provider_id,
                location_id=r.location_id,
                **extra,
            )
        ]
    if isinstance(r, QuestionRecord):
        return [
            PatientQuestionReceived(
                source=src(r.question_id),
                question_id=r.question_id,
                received_via=QuestionChannel.portal,
                service_line=line(r.service_code),
                review_recommended=True,
                review_within_days=r.review_within_days,
            )
        ]
    if isinstance(r, FeedbackRecord):
        poor = Sentiment.poor if r.score <= 6 else Sentiment.good
        return [
            ExperienceFeedbackRecorded(
                source=src(r.feedback_id),
                feedback_id=r.feedback_id,
                visit_id=r.visit_id,
                sentiment=poor,
            )
        ]
    assert isinstance(r, VisitRecord)
    on = r.end.date()
    services = tuple(
        ServicePerformed(
            code=c.service_code,
            system=CodeSystem.local,
            service_line=line(c.service_code),
            charge_cents=c.amount_cents,
        )
        for c in r.charges
    )
    out: list[Payload] = [
        VisitCompleted(
            source=src(r.visit_id),
            visit_id=r.visit_id,
            appointment_id=r.appointment_id,
            completed_at=r.end,
            provider_id=r.provider_id,
            location_id=r.location_id,
            services=services,
        )
    ]
    if (f := r.follow_up) is not None:
        out.append(
            FollowUpRecommended(
                source=src(f.follow_up_id),
                follow_up_id=f.follow_up_id,
                visit_id=r.visit_id,
                recommended_on=on,
                service_line=line(f.service_code),
                due_on=f.due_on,
                interval_days=f.interval_days,
                recurring=f.recurring,
            )
        )
    if (x := r.recommendation) is not None:
        out.append(
            TreatmentRecommended(
                source=src(x.recommendation_id),
                recommendation_id=x.recommendation_id,
                visit_id=r.visit_id,
                recommended_on=on,
                service_line=line(x.service_code),
                start_within_days=x.start_within_days,
            )
        )
    if (p := r.plan) is not None:
        done = len(p.done_visit_ids)
        out.append(
            TreatmentPlanUpdated(
                source=src(p.plan_id, done),
                plan_id=p.plan_id,
                service_line=line(p.service_code),
                sessions_planned=p.sessions_planned,
                sessions_completed=done,
                interval_days=p.interval_days,
                status=PlanStatus(p.status),
                last_session_on=p.done_dates[-1],
            )
        )
    return out


def _eligible_by(practice: Practice, until: datetime) -> dict[str, list[PatientBecameEligible]]:
    """Who became eligible for what, from the start to ``until``, one evaluation a day."""
    params = ClinicParams()
    charts: dict[str, list[Happening]] = defaultdict(list)
    for happening in practice.timeline:
        charts[happening.record.patient_id].append(happening)
    found: dict[str, list[PatientBecameEligible]] = {}
    for patient in practice.patients:
        key = f"{practice.clinic.clinic_id}:{patient.patient_id}"

        def envelopes(hs: list[Happening], key: str = key) -> list[Envelope[Any]]:
            return [
                new_event(e, clinic_id=practice.clinic.clinic_id, patient_key=key, occurred_at=h.at)
                for h in hs
                for e in _events(h, practice.clinic)
            ]

        chart = charts[patient.patient_id]
        now = practice.start
        state, out = decide_batch(
            PatientState.new(key), envelopes([h for h in chart if h.at <= now]), now, params
        )
        emitted = list(out)
        while now < until:
            later = now + timedelta(days=1)
            batch = envelopes([h for h in chart if now < h.at <= later])
            state, out = (
                decide_batch(state, batch, later, params)
                if batch
                else evaluate(state, later, params)
            )
            emitted += out
            now = later
        found[patient.patient_id] = [e for e in emitted if isinstance(e, PatientBecameEligible)]
    return found


@pytest.fixture(scope="module")
def practice() -> Practice:
    return build_practice(4, 300, START)


def test_every_segment_has_members_within_the_first_two_weeks(practice: Practice) -> None:
    found = _eligible_by(practice, START + timedelta(days=14))
    segments = Counter(e.segment.value for events in found.values() for e in events)

    assert set(segments) == {
        "follow_up_not_booked",
        "series_incomplete",
        "cancelled_not_rescheduled",
        "cosmetic_maintenance_due",
        "chronic_review_overdue",
        "question_no_review",
        "lapsed_patient",
        "consult_no_treatment",
    }


def test_each_journey_leads_to_its_segment_and_regular_patients_to_none(practice: Practice) -> None:
    found = _eligible_by(practice, START + timedelta(days=90))
    expected = {
        Journey.surveillance: "chronic_review_overdue",
        Journey.chronic: "chronic_review_overdue",
        Journey.follow_up: "follow_up_not_booked",
        Journey.series: "series_incomplete",
        Journey.canceller: "cancelled_not_rescheduled",
        Journey.cosmetic: "cosmetic_maintenance_due",
        Journey.question: "question_no_review",
        Journey.lapsed: "lapsed_patient",
        Journey.consult: "consult_no_treatment",
    }

    for patient in practice.patients:
        segments = {e.segment.value for e in found[patient.patient_id]}
        if patient.journey is Journey.regular:
            assert segments == set(), patient.patient_id
        elif not patient.poor_experience:  # service recovery holds every need
            assert expected[patient.journey] in segments, patient.patient_id
