"""The simulated EHR's records as FHIR R4 JSON, in the shapes ingest maps (docs/ingest.md).

Pure: each function returns plain dicts. Every resource carries its id, ``meta.versionId`` and
``meta.lastUpdated`` (the time the EHR recorded it), because ingest orders versions of a record
by the source's own time, never by arrival. Shared shapes live in ``fhir_shapes``, the visit
Bundle in ``fhir_visits``; both are re-exported here.

One thing FHIR cannot say to ingest: that a clinician recommended a review after a patient's
question (Communication has no such element, and ingest reads none). The practice's integration
engine sends that triage as a native JSON event instead (``question_triage_event``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from simulator.fhir_shapes import (
    CANCELLATION,
    COMMUNICATION_CONSENT,
    EHR,
    TERMINOLOGY,
    TZ_CODE,
    Resource,
    combined,
    find_service,
    instant,
    meta,
    ref,
    service_concept,
    transaction,
)
from simulator.fhir_visits import visit_bundle
from simulator.model import (
    AppointmentRecord,
    AppointmentStatus,
    Clinic,
    FeedbackRecord,
    Patient,
    QuestionRecord,
)

__all__ = [
    "appointment_resource",
    "combined",
    "consent_resource",
    "feedback_bundle",
    "patient_resource",
    "question_bundle",
    "question_triage_event",
    "transaction",
    "visit_bundle",
]
_CANCELLED_BY = {"patient": ("pat", "Patient"), "practice": ("prov", "Provider")}


# --- patients -------------------------------------------------------------------------------------


def patient_resource(patient: Patient, clinic: Clinic, version: int, updated: datetime) -> Resource:
    return {
        "resourceType": "Patient",
        "id": patient.patient_id,
        "meta": meta(version, updated, clinic),
        "extension": [{"url": TZ_CODE, "valueCode": clinic.time_zone}],
        "identifier": [
            {
                "type": {"coding": [{"system": f"{TERMINOLOGY}/v2-0203", "code": "MR"}]},
                "system": f"{EHR}/{clinic.clinic_id}/mrn",
                "value": patient.patient_id,
            }
        ],
        "active": True,
        "name": [{"use": "official", "family": patient.family_name, "given": [patient.given_name]}],
        "telecom": [
            {"system": "phone", "value": patient.phone, "use": "mobile", "rank": 1},
            {"system": "email", "value": patient.email, "use": "home", "rank": 2},
        ],
        "gender": patient.sex,
        "birthDate": patient.birth_date.isoformat(),
        "address": [{"use": "home", "state": clinic.state, "country": "US"}],
        "communication": [
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": patient.language}]},
                "preferred": True,
            }
        ],
        "generalPractitioner": [ref("Practitioner", patient.provider_id)],
    }


def consent_resource(patient: Patient, clinic: Clinic, updated: datetime) -> Resource:
    """The patient's marketing consent: permitted when they opted in, else denied."""
    granted = patient.marketing_consent
    return {
        "resourceType": "Consent",
        "id": f"{patient.patient_id}-marketing",
        "meta": meta(1, updated, clinic),
        "status": "active",
        "scope": {"coding": [{"system": f"{TERMINOLOGY}/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": COMMUNICATION_CONSENT, "code": "marketing"}]}],
        "patient": ref("Patient", patient.patient_id),
        "dateTime": instant(updated, clinic),
        "policyRule": {
            "coding": [
                {"system": f"{TERMINOLOGY}/v3-ActCode", "code": "OPTIN" if granted else "OPTOUT"}
            ]
        },
        "provision": {"type": "permit" if granted else "deny"},
    }


# --- appointments (when the EHR pushes them as FHIR rather than HL7) --------------------------


_APPOINTMENT_STATUS = {
    AppointmentStatus.booked: "booked",
    AppointmentStatus.cancelled: "cancelled",
    AppointmentStatus.noshow: "noshow",
    AppointmentStatus.fulfilled: "fulfilled",
}


def appointment_resource(appt: AppointmentRecord, clinic: Clinic, updated: datetime) -> Resource:
    resource: Resource = {
        "resourceType": "Appointment",
        "id": appt.appointment_id,
        "meta": meta(appt.version, updated, clinic),
        "status": _APPOINTMENT_STATUS[appt.status],
        "serviceType": [service_concept(clinic, appt.service_code)],
        "start": instant(appt.start, clinic),
        "end": instant(appt.start + timedelta(minutes=appt.minutes), clinic),
        "minutesDuration": appt.minutes,
        "participant": [
            {"actor": ref("Patient", appt.patient_id), "status": "accepted"},
            {"actor": ref("Practitioner", appt.provider_id), "status": "accepted"},
            {"actor": ref("Location", appt.location_id), "status": "accepted"},
        ],
    }
    if appt.status is AppointmentStatus.cancelled and appt.cancelled_by in _CANCELLED_BY:
        code, text = _CANCELLED_BY[appt.cancelled_by]
        resource["cancelationReason"] = {
            "coding": [{"system": CANCELLATION, "code": code, "display": text}]
        }
    return resource


# --- what patients told the practice ---------------------------------------------------------


def question_bundle(q: QuestionRecord, patient: Patient, clinic: Clinic) -> Resource:
    """The portal message as the EHR records it; its words stay in the EHR."""
    medium = {"system": f"{TERMINOLOGY}/v3-ParticipationMode", "code": "ONLINEWRIT"}
    communication = {
        "resourceType": "Communication",
        "id": q.question_id,
        "meta": meta(1, q.sent_at, clinic),
        "status": "completed",
        "category": [service_concept(clinic, q.service_code)],
        "medium": [{"coding": [medium]}],
        "subject": ref("Patient", q.patient_id),
        "sender": ref("Patient", q.patient_id),
        "recipient": [ref("Practitioner", patient.provider_id)],
        "sent": instant(q.sent_at, clinic),
    }
    return transaction([communication])


def question_triage_event(q: QuestionRecord, patient: Patient, clinic: Clinic) -> Resource:
    """The clinician's triage of a question, as a native ingest event (FHIR cannot carry it).

    Version 2 of the same question record at the same time, so it wins over the Communication
    (version 1) whichever arrives first.
    """
    payload: dict[str, Any] = {
        "source": {
            "system": "json",
            "record_id": q.question_id,
            "source_version": "2",
            "source_updated_at": instant(q.sent_at, clinic),
        },
        "question_id": q.question_id,
        "received_via": "portal",
        "review_recommended": True,
        "review_within_days": q.review_within_days,
        "provider_id": patient.provider_id,
    }
    service = find_service(clinic, q.service_code)
    if service is not None:
        payload["service_line"] = service.service_line.value
    return {"type": "PatientQuestionReceived", "patient_id": q.patient_id, "payload": payload}


def feedback_bundle(f: FeedbackRecord, clinic: Clinic) -> Resource:
    topics = [
        {"valueCoding": {"system": f"{EHR}/CodeSystem/feedback-topic", "code": t}} for t in f.topics
    ]
    items: list[dict[str, Any]] = [{"linkId": "nps", "answer": [{"valueInteger": f.score}]}]
    if topics:
        items.append({"linkId": "topics", "answer": topics})
    response: Resource = {
        "resourceType": "QuestionnaireResponse",
        "id": f.feedback_id,
        "meta": meta(1, f.recorded_at, clinic),
        "questionnaire": f"{EHR}/Questionnaire/visit-experience",
        "status": "completed",
        "subject": ref("Patient", f.patient_id),
        "source": ref("Patient", f.patient_id),
        "authored": instant(f.recorded_at, clinic),
        "item": items,
    }
    if f.visit_id:
        response["encounter"] = ref("Encounter", f.visit_id)
    return transaction([response])
