"""FHIR R4 resources and Bundles -> facts, or refusals naming the FHIR path of the problem."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.ingest import submissions
from services.ingest.domain import MappingContext
from services.ingest.fhir.plans import PURPOSE_SYSTEM as PURPOSE
from services.ingest.mapping.appointments import AppointmentVersion
from services.ingest.mapping.drafts import finalize
from shared.events.common import Channel, ContactUse, Initiator, Purpose, ServiceLine
from shared.events.ehr import CancellationReason, ConsentStatus, PlanStatus, Sentiment

CTX = MappingContext(
    received_at=datetime(2026, 11, 20, tzinfo=UTC), local_zone=ZoneInfo("America/Chicago")
)
CPT = "http://www.ama-assn.org/go/cpt"


def appointment(**changes: Any) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": "a-1",
        "meta": {"versionId": "2", "lastUpdated": "2026-11-20T09:00:00-06:00"},
        "status": "booked",
        "serviceType": [{"coding": [{"system": CPT, "code": "17311"}]}],
        "start": "2026-11-28T10:00:00-06:00",
        "end": "2026-11-28T11:00:00-06:00",
        "participant": [
            {"actor": {"reference": "Patient/p-1"}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/dr-1"}, "status": "accepted"},
            {"actor": {"reference": "Location/room-3"}, "status": "accepted"},
        ],
        **changes,
    }


def bundle(*resources: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "timestamp": "2026-11-20T10:00:00Z",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


def mapped(doc: dict[str, Any], history: dict[str, list[AppointmentVersion]] | None = None) -> list:
    sub = submissions.fhir(json.dumps(doc).encode(), "clinic-1", None, CTX)
    assert sub.refused is None, sub.refused.problems
    assert sub.mapped is not None
    facts, _ = finalize(sub.mapped, {} if history is None else history)
    return [f.payload for f in facts]


def problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    sub = submissions.fhir(json.dumps(doc).encode(), "clinic-1", None, CTX)
    assert sub.refused is not None
    return [(p.loc, p.msg) for p in sub.refused.problems]


def test_a_booked_appointment_carries_its_source_version_and_service_line() -> None:
    [booked] = mapped(appointment())
    assert booked.event_type == "AppointmentBooked"
    assert (booked.provider_id, booked.location_id, booked.duration_minutes) == (
        "dr-1",
        "room-3",
        60,
    )
    assert booked.service_line is ServiceLine.mohs
    assert booked.source.source_version == "2"
    assert booked.source.source_updated_at == datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def test_an_appointment_without_a_patient_is_refused_naming_the_participant() -> None:
    doc = appointment(
        participant=[{"actor": {"reference": "Practitioner/dr-1"}, "status": "accepted"}]
    )
    assert problems(doc) == [("Appointment.participant", "no Patient reference")]
    doc = appointment(
        participant=[
            {"actor": {"reference": "Practitioner/dr-1"}, "status": "accepted"},
            {"actor": {"type": "Patient", "display": "a name"}, "status": "accepted"},
        ]
    )
    assert problems(doc) == [("Appointment.participant[1].actor", "no Patient reference")]


def test_inside_a_bundle_the_path_names_the_entry() -> None:
    broken = appointment(start="next tuesday")
    locs = [loc for loc, _ in problems(bundle(appointment(id="a-0"), broken))]
    assert locs == ["Bundle.entry[1].Appointment.start"]


@pytest.mark.parametrize(
    ("status", "reason", "event", "who", "why"),
    [
        (
            "cancelled",
            "pat",
            "AppointmentCancelled",
            Initiator.patient,
            CancellationReason.patient_request,
        ),
        (
            "cancelled",
            "prov",
            "AppointmentCancelled",
            Initiator.practice,
            CancellationReason.provider_unavailable,
        ),
        (
            "cancelled",
            "oth-weath",
            "AppointmentCancelled",
            Initiator.unknown,
            CancellationReason.weather,
        ),
        (
            "entered-in-error",
            None,
            "AppointmentCancelled",
            Initiator.practice,
            CancellationReason.entered_in_error,
        ),
        ("noshow", None, "AppointmentNoShow", None, None),
        ("arrived", None, "AppointmentKept", None, None),
        ("fulfilled", None, "AppointmentKept", None, None),
    ],
)
def test_appointment_status_decides_the_event(
    status: str, reason: str | None, event: str, who: Initiator | None, why: Any
) -> None:
    changes: dict[str, Any] = {"status": status}
    if reason:
        system = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason"
        changes["cancelationReason"] = {"coding": [{"system": system, "code": reason}]}
    [payload] = mapped(appointment(**changes))
    assert payload.event_type == event
    if who is not None:
        assert (payload.cancelled_by, payload.reason_code) == (who, why)


@pytest.mark.parametrize("status", ["proposed", "pending", "waitlist"])
def test_a_proposal_is_recorded_but_never_published_as_booked(status: str) -> None:
    assert mapped(appointment(status=status)) == []


def test_a_booking_whose_start_moved_is_a_reschedule() -> None:
    history: dict[str, list[AppointmentVersion]] = {}
    mapped(appointment(), history)
    later = {"versionId": "3", "lastUpdated": "2026-11-21T09:00:00-06:00"}
    [moved] = mapped(appointment(meta=later, start="2026-12-01T10:00:00-06:00", end=None), history)
    assert moved.event_type == "AppointmentRescheduled"
    assert moved.previous_start == datetime(2026, 11, 28, 16, 0, tzinfo=UTC)


def test_a_bundled_patient_is_mapped_first_and_referenced_by_full_url() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p-9",
        "name": [{"use": "official", "given": ["Ana"]}, {"use": "usual", "given": ["Annie"]}],
        "telecom": [
            {"system": "phone", "value": "(512) 555-0101", "use": "mobile", "rank": 2},
            {"system": "email", "value": "ana@example.org", "rank": 1},
            {"system": "phone", "value": "512 555 0100", "period": {"end": "2020-01-01"}},
        ],
        "communication": [
            {"language": {"coding": [{"code": "fr"}]}},
            {"language": {"coding": [{"code": "es-MX"}]}, "preferred": True},
        ],
        "address": [{"use": "home", "state": "Arizona", "country": "US"}],
        "deceasedDateTime": "2026-01-01",
    }
    appt = appointment(participant=[{"actor": {"reference": "urn:uuid:p-9"}, "status": "accepted"}])
    person, booked = mapped(bundle(appt, patient))
    assert person.event_type == "PatientUpserted" and booked.event_type == "AppointmentBooked"
    assert person.given_name == "Annie"
    assert [(c.value, c.use, c.rank) for c in person.contacts] == [
        ("ana@example.org", ContactUse.home, 1),
        ("+15125550101", ContactUse.mobile, 2),
        ("+15125550100", ContactUse.old, 3),
    ]
    assert (person.preferred_language, person.time_zone, person.deceased) == (
        "es-MX",
        "America/Phoenix",
        True,
    )
    assert person.home_state == "AZ"  # the state's allowed hours apply to this patient


def test_a_finished_encounter_carries_its_billed_services_but_never_a_diagnosis() -> None:
    encounter = {
        "resourceType": "Encounter",
        "id": "e-1",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient/p-1"},
        "period": {"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T09:40:00Z"},
        "participant": [{"individual": {"reference": "Practitioner/dr-1"}}],
    }
    claim = {
        "resourceType": "Claim",
        "id": "cl-1",
        "status": "active",
        "type": {"coding": [{"code": "professional"}]},
        "use": "claim",
        "patient": {"reference": "Patient/p-1"},
        "created": "2026-11-20",
        "provider": {"reference": "Organization/o-1"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "x"}}],
        "item": [
            {
                "sequence": 1,
                "productOrService": {"coding": [{"system": CPT, "code": "11102"}]},
                "net": {"value": 150.5, "currency": "USD"},
                "encounter": [{"reference": "Encounter/e-1"}],
            },
            {
                "sequence": 2,
                "diagnosisSequence": [1],
                "productOrService": {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]},
            },
            {
                "sequence": 3,
                "productOrService": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C44.91"}]
                },
            },
        ],
    }
    [visit] = mapped(bundle(encounter, claim))
    assert visit.event_type == "VisitCompleted"
    assert visit.completed_at == datetime(2026, 11, 20, 9, 40, tzinfo=UTC)
    assert [(s.code, s.service_line, s.charge_cents) for s in visit.services] == [
        ("11102", ServiceLine.biopsy_follow_up, 15050)
    ]


def request(**changes: Any) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p-1"},
        "encounter": {"reference": "Encounter/e-1"},
        "authoredOn": "2026-11-20",
        "code": {"coding": [{"code": "FOLLOWUP"}], "text": "skin check in 6 months"},
        **changes,
    }


def test_a_follow_up_order_with_a_timing_becomes_a_follow_up_due_after_the_interval() -> None:
    timing = {"repeat": {"boundsDuration": {"value": 6, "code": "mo"}}}
    [follow_up] = mapped(request(occurrenceTiming=timing))
    assert follow_up.event_type == "FollowUpRecommended"
    assert (follow_up.interval_days, follow_up.recurring, follow_up.visit_id) == (180, False, "e-1")
    assert follow_up.recommended_on == date(2026, 11, 20)


def test_a_consultation_proposal_for_a_known_service_is_a_treatment_recommendation() -> None:
    code = {"coding": [{"system": CPT, "code": "17106"}]}
    [rec] = mapped(request(intent="proposal", code=code, quantityQuantity={"value": 3}))
    assert rec.event_type == "TreatmentRecommended"
    assert (rec.service_line, rec.sessions_estimated, rec.visit_id) == (ServiceLine.laser, 3, "e-1")


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "completed"},
        {"intent": "filler-order"},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}]}},
        {"category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}]},
    ],
)
def test_requests_that_are_not_recommendations_are_left_out_with_a_note(changes: dict) -> None:
    sub = submissions.fhir(json.dumps(request(**changes)).encode(), "c", None, CTX)
    assert sub.mapped is not None and sub.mapped.drafts == () and sub.mapped.notes


def test_a_care_plan_series_reports_sessions_planned_done_and_the_last_one() -> None:
    plan = {
        "resourceType": "CarePlan",
        "id": "cp-1",
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/p-1"},
        "period": {"start": "2026-09-01"},
        "activity": [
            {
                "outcomeReference": [{"reference": "Procedure/s1"}, {"reference": "Procedure/s2"}],
                "detail": {
                    "code": {"coding": [{"code": "LASER"}]},
                    "status": "in-progress",
                    "scheduledTiming": {"repeat": {"count": 6, "period": 4, "periodUnit": "wk"}},
                },
            },
            {
                "detail": {
                    "kind": "Appointment",
                    "code": {"coding": [{"code": "FOLLOWUP"}]},
                    "status": "not-started",
                    "scheduledString": "in 6 months",
                }
            },
        ],
    }
    sessions = [
        {
            "resourceType": "Procedure",
            "id": f"s{i}",
            "status": "completed",
            "subject": {"reference": "Patient/p-1"},
            "performedDateTime": f"2026-{8 + i:02d}-15",
        }
        for i in (1, 2)
    ]
    series, follow_up = mapped(bundle(plan, *sessions))
    assert series.event_type == "TreatmentPlanUpdated"
    assert (series.plan_id, series.sessions_planned, series.sessions_completed) == ("cp-1#0", 6, 2)
    assert (series.interval_days, series.last_session_on) == (28, date(2026, 10, 15))
    assert series.status is PlanStatus.active and series.service_line is ServiceLine.laser
    assert (follow_up.event_type, follow_up.interval_days) == ("FollowUpRecommended", 180)
    assert series.purpose is None  # the plan documents no purpose
    medical = {**plan, "category": [{"coding": [{"system": PURPOSE, "code": "care"}]}]}
    series, _ = mapped(bundle(medical, *sessions))
    assert series.purpose is Purpose.care  # a medical laser series: care, not marketing


def test_a_question_from_the_patient_is_received_and_answered_without_its_text() -> None:
    question = {
        "resourceType": "Communication",
        "id": "q-1",
        "status": "completed",
        "subject": {"reference": "Patient/p-1"},
        "sender": {"reference": "Patient/p-1"},
        "medium": [{"coding": [{"code": "ONLINEWRIT"}]}],
        "payload": [{"contentString": "is this mole ok?"}],
    }
    answer = {
        "resourceType": "Communication",
        "id": "q-2",
        "status": "completed",
        "sender": {"reference": "Practitioner/dr-1"},
        "inResponseTo": [{"reference": "Communication/q-1"}],
    }
    [received] = mapped(bundle(question, answer))
    assert (received.question_id, received.received_via.value, received.answered) == (
        "q-1",
        "portal",
        True,
    )
    assert "mole" not in received.model_dump_json()


def test_only_a_consent_about_contacting_the_patient_changes_consent() -> None:
    consent = {
        "resourceType": "Consent",
        "id": "k-1",
        "status": "active",
        "scope": {"coding": [{"code": "patient-privacy"}]},
        "category": [
            {"coding": [{"system": "urn:revisit:communication-consent", "code": "marketing-sms"}]}
        ],
        "patient": {"reference": "Patient/p-1"},
        "provision": {"type": "deny"},
    }
    [changed] = mapped(consent)
    assert (changed.purpose, changed.channel, changed.status) == (
        Purpose.marketing,
        Channel.sms,
        ConsentStatus.revoked,
    )


def test_a_low_score_is_recorded_as_a_poor_experience_with_its_topics() -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "id": "f-1",
        "status": "completed",
        "subject": {"reference": "Patient/p-1"},
        "item": [
            {"linkId": "nps", "answer": [{"valueInteger": 4}]},
            {"linkId": "topics", "answer": [{"valueCoding": {"code": "wait_time"}}]},
            {"linkId": "comment", "answer": [{"valueString": "waited an hour"}]},
        ],
    }
    [feedback] = mapped(response)
    assert (feedback.sentiment, feedback.score) == (Sentiment.poor, 4)
    assert [t.value for t in feedback.topics] == ["wait_time"]


def test_a_put_must_name_the_resource_it_carries() -> None:
    raw = json.dumps(appointment()).encode()
    sub = submissions.fhir(raw, "c", None, CTX, path=("Appointment", "other"))
    assert sub.refused is not None
    assert [p.loc for p in sub.refused.problems] == ["Appointment.id"]
    ok = submissions.fhir(raw, "c", None, CTX, path=("Appointment", "a-1"))
    assert ok.source_key == "fhir:Appointment/a-1/_history/2"
