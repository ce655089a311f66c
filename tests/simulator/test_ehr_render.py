"""The simulated EHR's FHIR and HL7 renderings, read back by ingest's own pure mappers."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B import get_fhir_model_class

from services.ingest.domain import MappingContext, parse_native
from services.ingest.fhir.mapper import read_and_map as read_fhir
from services.ingest.hl7v2.mapper import read_and_map as read_hl7
from services.ingest.mapping.appointments import AppointmentVersion
from services.ingest.mapping.drafts import finalize
from shared.events.common import ContactKind, ContactUse, Initiator, Purpose, ServiceLine
from shared.events.ehr import CancellationReason, ConsentStatus, PlanStatus, Sentiment
from simulator import fhir_out, hl7_out
from simulator.model import (
    AppointmentRecord,
    AppointmentStatus,
    Charge,
    Clinic,
    FeedbackRecord,
    FollowUp,
    Journey,
    Location,
    Patient,
    Persona,
    Provider,
    QuestionRecord,
    Recommendation,
    SeriesPlan,
    Service,
    VisitRecord,
)

SL = ServiceLine
CLINIC = Clinic(
    clinic_id="clinic-sim",
    name="Lakeside Dermatology",
    time_zone="America/Chicago",
    state="TX",
    locations=(Location("loc-down", "Downtown"),),
    providers=(Provider("dr-rivera", "Dr. Rivera", "loc-down", ("SKINCHECK", "MOHS")),),
    catalogue=(
        Service("SKINCHECK", "96904", "Full-body skin check", SL.skin_check, 150_00, 30),
        Service("MOHS", "99204", "Mohs surgery consultation", SL.mohs, 250_00, 30),
        Service("MOHSSURGERY", "17311", "Mohs surgery", SL.mohs, 1_500_00, 120),
        Service("PSORIASIS", "99214", "Psoriasis & eczema review", SL.psoriasis_eczema, 140_00, 25),
        Service("LASER", "0479T", "Laser resurfacing", SL.laser, 400_00, 45, 4, 28),
    ),
)
ANA = Patient(
    patient_id="P-000101",
    given_name="Ana",
    family_name="Testperson",
    birth_date=date(1980, 1, 1),
    sex="female",
    phone="+15125550101",
    email="ana@example.org",
    language="es",
    persona=Persona.prompt,
    journey=Journey.canceller,
    home_location_id="loc-down",
    provider_id="dr-rivera",
    marketing_consent=True,
)
CTX = MappingContext(
    received_at=datetime(2026, 12, 1, tzinfo=UTC), local_zone=ZoneInfo("America/Chicago")
)
AT = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
START = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)


def appointment(**changes: Any) -> AppointmentRecord:
    fields: dict[str, Any] = {
        "appointment_id": "A-9",
        "patient_id": ANA.patient_id,
        "service_code": "SKINCHECK",
        "provider_id": "dr-rivera",
        "location_id": "loc-down",
        "start": START,
        "minutes": 30,
        "status": AppointmentStatus.booked,
        "version": 1,
    }
    return AppointmentRecord(**(fields | changes))


def visit(**changes: Any) -> VisitRecord:
    fields: dict[str, Any] = {
        "visit_id": "V-7",
        "patient_id": ANA.patient_id,
        "appointment_id": "A-9",
        "provider_id": "dr-rivera",
        "location_id": "loc-down",
        "start": START,
        "end": START + timedelta(minutes=40),
        "charges": (Charge("MOHS", "99204", 250_00), Charge("SKINCHECK", "96904", 150_00)),
    }
    return VisitRecord(**(fields | changes))


def from_fhir(doc: dict[str, Any]) -> list[Any]:
    _document, mapped = read_fhir(doc, CTX)
    facts, _ = finalize(mapped, {})
    return [f.payload for f in facts]


def from_hl7(text: str, history: MutableMapping[str, list[AppointmentVersion]]) -> list[Any]:
    _message, mapped = read_hl7(text, CTX)
    facts, _ = finalize(mapped, history)
    return [f.payload for f in facts]


def siu(appt: AppointmentRecord, at: datetime = AT) -> str:
    return hl7_out.siu_message(
        appt, ANA, CLINIC, control_id=hl7_out.control_id_for(appt), sent_at=at, api_key="rvk_x"
    )


def test_a_patient_record_becomes_a_patient_reachable_on_their_mobile() -> None:
    resource = fhir_out.patient_resource(ANA, CLINIC, 1, AT)
    [patient] = from_fhir(fhir_out.transaction([resource]))
    assert patient.event_type == "PatientUpserted"
    assert patient.given_name == "Ana"
    assert [(c.kind, c.value, c.use) for c in patient.contacts] == [
        (ContactKind.phone, "+15125550101", ContactUse.mobile),
        (ContactKind.email, "ana@example.org", ContactUse.home),
    ]
    assert (patient.preferred_language, patient.time_zone) == ("es", "America/Chicago")
    assert patient.source.source_version == "1"
    assert patient.source.source_updated_at == AT


def test_a_marketing_opt_in_becomes_granted_marketing_consent_and_no_opt_in_a_refusal() -> None:
    [granted] = from_fhir(fhir_out.transaction([fhir_out.consent_resource(ANA, CLINIC, AT)]))
    assert (granted.purpose, granted.channel, granted.status) == (
        Purpose.marketing,
        None,
        ConsentStatus.granted,
    )
    declined = replace(ANA, marketing_consent=False)
    [revoked] = from_fhir(fhir_out.transaction([fhir_out.consent_resource(declined, CLINIC, AT)]))
    assert revoked.status is ConsentStatus.revoked


def test_a_booked_siu_becomes_the_patient_then_the_booking_with_its_line_and_place() -> None:
    patient, booked = from_hl7(siu(appointment()), {})
    assert patient.event_type == "PatientUpserted"
    assert patient.contacts[0].value == "+15125550101"
    assert patient.contacts[0].use is ContactUse.mobile
    assert (patient.preferred_language, patient.time_zone) == ("es", "America/Chicago")
    assert booked.event_type == "AppointmentBooked"
    assert (booked.appointment_id, booked.service_line) == ("A-9", SL.skin_check)
    assert (booked.provider_id, booked.location_id) == ("dr-rivera", "loc-down")
    assert (booked.start, booked.duration_minutes) == (START, 30)
    assert booked.source.source_updated_at == AT


def test_a_moved_booking_is_a_reschedule_and_its_cancellation_says_the_patient_cancelled() -> None:
    history: dict[str, list[AppointmentVersion]] = {}
    from_hl7(siu(appointment()), history)
    moved = appointment(start=START + timedelta(days=2), version=2)
    [_, rescheduled] = from_hl7(siu(moved, AT + timedelta(hours=1)), history)
    assert rescheduled.event_type == "AppointmentRescheduled"
    assert rescheduled.previous_start == START
    cancelled = appointment(status=AppointmentStatus.cancelled, version=3, cancelled_by="patient")
    [_, cancellation] = from_hl7(siu(cancelled, AT + timedelta(hours=2)), history)
    assert cancellation.event_type == "AppointmentCancelled"
    assert cancellation.cancelled_by is Initiator.patient
    assert cancellation.reason_code is CancellationReason.patient_request
    assert cancellation.start == START  # the S15 carries the start it had when cancelled


def test_a_practice_cancellation_is_the_practices() -> None:
    appt = appointment(status=AppointmentStatus.cancelled, version=2, cancelled_by="practice")
    [_, cancellation] = from_hl7(siu(appt), {})
    assert cancellation.cancelled_by is Initiator.practice


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (AppointmentStatus.noshow, "AppointmentNoShow"),
        (AppointmentStatus.fulfilled, "AppointmentKept"),
    ],
)
def test_a_missed_or_attended_appointment_says_so(status: AppointmentStatus, expected: str) -> None:
    [_, event] = from_hl7(siu(appointment(status=status, version=2)), {})
    assert event.event_type == expected
    assert event.service_line is SL.skin_check


def test_a_resend_is_the_same_message_and_each_version_has_its_own_control_id() -> None:
    assert siu(appointment()) == siu(appointment())
    first, second = appointment(), appointment(version=2)
    assert hl7_out.control_id_for(first) != hl7_out.control_id_for(second)
    header = siu(first).split("\r")[0].split("|")
    assert header[7] == "rvk_x"  # MSH-8 carries the key
    assert (header[9], header[10], header[11]) == ("A-9-v1", "P", "2.5.1")


def test_a_service_name_with_an_ampersand_is_escaped_and_still_maps() -> None:
    text = siu(appointment(service_code="PSORIASIS", minutes=25))
    assert "Psoriasis \\T\\ eczema review" in text
    [_, booked] = from_hl7(text, {})
    assert booked.service_line is SL.psoriasis_eczema


def test_an_appointment_pushed_as_fhir_maps_like_the_hl7_one() -> None:
    appt = appointment(status=AppointmentStatus.cancelled, version=2, cancelled_by="patient")
    [cancellation] = from_fhir(
        fhir_out.transaction([fhir_out.appointment_resource(appt, CLINIC, AT)])
    )
    assert cancellation.event_type == "AppointmentCancelled"
    assert cancellation.cancelled_by is Initiator.patient
    assert (cancellation.start, cancellation.duration_minutes) == (START, 30)
    assert cancellation.source.source_version == "2"


def test_a_visit_is_completed_with_its_services_and_what_they_cost() -> None:
    [completed] = from_fhir(fhir_out.visit_bundle(visit(), CLINIC, visit().end))
    assert completed.event_type == "VisitCompleted"
    assert (completed.visit_id, completed.appointment_id) == ("V-7", "A-9")
    assert (completed.provider_id, completed.location_id) == ("dr-rivera", "loc-down")
    assert completed.completed_at == visit().end
    # The practice's key names the service: CPT 99204 alone would read as general dermatology.
    assert [(s.code, s.service_line) for s in completed.services] == [
        ("MOHS", SL.mohs),
        ("SKINCHECK", SL.skin_check),
    ]
    assert sum(s.charge_cents for s in completed.services) == 400_00


def test_a_follow_up_by_date_becomes_a_follow_up_due_that_day() -> None:
    follow_up = FollowUp("FU-1", "SKINCHECK", date(2027, 5, 20), None)
    _, recommended = from_fhir(fhir_out.visit_bundle(visit(follow_up=follow_up), CLINIC, AT))
    assert recommended.event_type == "FollowUpRecommended"
    assert (recommended.follow_up_id, recommended.visit_id) == ("FU-1", "V-7")
    assert (recommended.due_on, recommended.recurring) == (date(2027, 5, 20), False)
    assert recommended.service_line is SL.skin_check


def test_a_standing_review_recurs_at_its_interval() -> None:
    follow_up = FollowUp("FU-2", "PSORIASIS", date(2027, 5, 20), 180, recurring=True)
    _, review = from_fhir(fhir_out.visit_bundle(visit(follow_up=follow_up), CLINIC, AT))
    assert (review.due_on, review.interval_days, review.recurring) == (date(2027, 5, 20), 180, True)
    assert review.service_line is SL.psoriasis_eczema


def test_a_follow_up_within_an_interval_keeps_the_interval_without_recurring() -> None:
    follow_up = FollowUp("FU-3", "SKINCHECK", None, 90)
    _, within = from_fhir(fhir_out.visit_bundle(visit(follow_up=follow_up), CLINIC, AT))
    assert (within.due_on, within.interval_days, within.recurring) == (None, 90, False)


def test_a_consult_recommendation_becomes_a_treatment_recommendation() -> None:
    rec = Recommendation("R-1", "MOHSSURGERY", sessions=1, start_within_days=30)
    _, recommended = from_fhir(fhir_out.visit_bundle(visit(recommendation=rec), CLINIC, AT))
    assert recommended.event_type == "TreatmentRecommended"
    assert (recommended.recommendation_id, recommended.visit_id) == ("R-1", "V-7")
    assert (recommended.sessions_estimated, recommended.start_within_days) == (1, 30)
    assert recommended.service_line is SL.mohs
    assert recommended.treatment is not None and recommended.treatment.code == "MOHSSURGERY"


def test_a_series_plan_reports_k_of_n_sessions_dated_by_the_sessions_done() -> None:
    plan = SeriesPlan(
        "PL-1", "LASER", 4, 28, ("V-5", "V-7"), (date(2026, 10, 31), date(2026, 11, 28))
    )
    _, progress = from_fhir(fhir_out.visit_bundle(visit(plan=plan), CLINIC, AT))
    assert progress.event_type == "TreatmentPlanUpdated"
    assert progress.plan_id == "PL-1#0"
    assert (progress.sessions_planned, progress.sessions_completed) == (4, 2)
    assert (progress.interval_days, progress.status) == (28, PlanStatus.active)
    assert (progress.started_on, progress.last_session_on) == (
        date(2026, 10, 31),
        date(2026, 11, 28),
    )
    assert progress.service_line is SL.laser


def test_a_plan_not_started_yet_is_a_plan_with_nothing_done() -> None:
    plan = SeriesPlan("PL-2", "LASER", 4, 28, (), ())
    _, progress = from_fhir(fhir_out.visit_bundle(visit(plan=plan), CLINIC, AT))
    assert (progress.sessions_completed, progress.last_session_on) == (0, None)


def test_a_series_with_every_session_done_is_a_completed_plan() -> None:
    days = (date(2026, 9, 1), date(2026, 9, 29), date(2026, 10, 27), date(2026, 11, 24))
    plan = SeriesPlan("PL-3", "LASER", 4, 28, ("V-1", "V-2", "V-3", "V-7"), days, "completed")
    _, progress = from_fhir(fhir_out.visit_bundle(visit(plan=plan), CLINIC, AT))
    assert (progress.sessions_completed, progress.status) == (4, PlanStatus.completed)


def test_a_portal_question_is_received_and_its_triage_recommends_a_review() -> None:
    q = QuestionRecord("Q-1", ANA.patient_id, "SKINCHECK", AT, review_within_days=7)
    [received] = from_fhir(fhir_out.question_bundle(q, ANA, CLINIC))
    assert received.event_type == "PatientQuestionReceived"
    assert (received.question_id, received.received_via.value) == ("Q-1", "portal")
    assert (received.service_line, received.provider_id) == (SL.skin_check, "dr-rivera")
    assert received.review_recommended is False  # FHIR cannot say it: the triage event does
    [fact] = parse_native(fhir_out.question_triage_event(q, ANA, CLINIC), clinic_id="c-1")
    triage: Any = fact.payload
    assert (triage.question_id, triage.service_line) == ("Q-1", SL.skin_check)
    assert (triage.review_recommended, triage.review_within_days) == (True, 7)
    # The same record at the same time, a later version: it wins whichever arrives first.
    assert triage.source.source_updated_at == received.source.source_updated_at
    assert (received.source.source_version, triage.source.source_version) == ("1", "2")


def test_a_low_survey_score_is_a_poor_experience_with_its_topics() -> None:
    feedback = FeedbackRecord("F-1", ANA.patient_id, "V-7", 3, ("wait_time", "cost"), AT)
    [recorded] = from_fhir(fhir_out.feedback_bundle(feedback, CLINIC))
    assert recorded.event_type == "ExperienceFeedbackRecorded"
    assert (recorded.sentiment, recorded.score) == (Sentiment.poor, 3)
    assert [t.value for t in recorded.topics] == ["wait_time", "cost"]
    assert recorded.visit_id == "V-7"


def test_records_batched_into_one_bundle_map_to_the_events_of_each_alone() -> None:
    plan = SeriesPlan("PL-1", "LASER", 4, 28, ("V-7",), (date(2026, 11, 28),))
    parts = [
        fhir_out.visit_bundle(visit(plan=plan), CLINIC, AT),
        fhir_out.feedback_bundle(FeedbackRecord("F-1", ANA.patient_id, "V-7", 9, (), AT), CLINIC),
    ]
    alone = [e.model_dump() for part in parts for e in from_fhir(part)]
    assert [e.model_dump() for e in from_fhir(fhir_out.combined(parts))] == alone
    assert fhir_out.combined(parts) == fhir_out.combined(parts)  # same records, same Bundle id


def test_every_rendered_resource_is_valid_fhir_r4() -> None:
    plan = SeriesPlan("PL-1", "LASER", 4, 28, ("V-7",), (date(2026, 11, 28),))
    full = visit(
        follow_up=FollowUp("FU-1", "SKINCHECK", date(2027, 5, 20), 365, recurring=True),
        recommendation=Recommendation("R-1", "MOHSSURGERY", 1, 30),
        plan=plan,
    )
    q = QuestionRecord("Q-1", ANA.patient_id, "SKINCHECK", AT, 7)
    bundles = [
        fhir_out.visit_bundle(full, CLINIC, AT),
        fhir_out.question_bundle(q, ANA, CLINIC),
        fhir_out.feedback_bundle(
            FeedbackRecord("F-1", ANA.patient_id, None, 2, ("other",), AT), CLINIC
        ),
        fhir_out.transaction(
            [
                fhir_out.patient_resource(ANA, CLINIC, 1, AT),
                fhir_out.consent_resource(ANA, CLINIC, AT),
                fhir_out.appointment_resource(appointment(), CLINIC, AT),
            ]
        ),
    ]
    kinds = set()
    for bundle in bundles:
        get_fhir_model_class("Bundle").model_validate(bundle)
        for entry in bundle["entry"]:
            kinds.add(entry["resource"]["resourceType"])
            assert entry["resource"]["meta"]["versionId"]
            assert entry["resource"]["meta"]["lastUpdated"]
    assert {"Encounter", "Claim", "ServiceRequest", "CarePlan", "Procedure"} <= kinds
