"""The conversation in the chart: each message sent and each reply received, as a FHIR
``Communication`` about the appointment (or plan) it concerned.

Idempotent: the Communication carries Revisit's message id as an identifier, and is created
with ``If-None-Exist`` on it, so writing the same message twice leaves one record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

MESSAGE_SYSTEM = "urn:revisit:message"
MEDIUM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"
_MEDIUM_CODES = {"sms": ("SMSWRIT", "SMS message"), "email": ("EMAILWRIT", "email")}


class Direction(StrEnum):
    outbound = "outbound"  # the practice (through Revisit) to the patient
    inbound = "inbound"  # the patient's reply


@dataclass(frozen=True)
class ChartEntry:
    message_id: str
    direction: Direction
    patient_id: str  # the EHR's FHIR Patient id
    channel: str  # sms | email
    body: str
    at: datetime
    about: tuple[str, ...] = ()  # FHIR references: "Appointment/123", "ServiceRequest/9"
    in_response_to: str | None = None  # Revisit's id of the message this reply answers
    organization_id: str | None = None  # the practice as sender/recipient, when mapped


def communication(entry: ChartEntry) -> dict[str, Any]:
    patient = {"reference": f"Patient/{entry.patient_id}"}
    practice: dict[str, Any] = (
        {"reference": f"Organization/{entry.organization_id}"}
        if entry.organization_id
        else {"display": "Practice (Revisit)"}
    )
    code, display = _MEDIUM_CODES.get(entry.channel, ("WRITTEN", "written"))
    body: dict[str, Any] = {
        "resourceType": "Communication",
        "identifier": [{"system": MESSAGE_SYSTEM, "value": entry.message_id}],
        "status": "completed",
        "category": [{"coding": [{"system": CATEGORY, "code": "notification"}]}],
        "medium": [{"coding": [{"system": MEDIUM, "code": code, "display": display}]}],
        "subject": patient,
        "sent" if entry.direction is Direction.outbound else "received": entry.at.isoformat(),
        "sender": practice if entry.direction is Direction.outbound else patient,
        "recipient": [patient if entry.direction is Direction.outbound else practice],
        "payload": [{"contentString": entry.body}],
    }
    if entry.about:
        body["about"] = [{"reference": ref} for ref in entry.about]
    if entry.in_response_to:
        body["inResponseTo"] = [
            {
                "type": "Communication",
                "identifier": {"system": MESSAGE_SYSTEM, "value": entry.in_response_to},
            }
        ]
    return body


def if_none_exist(message_id: str) -> str:
    return f"identifier={MESSAGE_SYSTEM}|{message_id}"
