"""The FHIR R4 resources Revisit reads (Schedule, Slot, Patient) and writes (Appointment), as
plain JSON, with the practice's own codes from the connection's mappings.

Search: the EHR's own schedules for the practitioner (``Schedule?actor=Practitioner/<id>``),
then their free slots (``Slot?schedule=…&status=free&start=ge…&service-type=<sys>|<code>``).
Booking: an Appointment naming the patient, practitioner, location, service type and reason,
with Revisit's booking-request identifier so that ``If-None-Exist`` makes it a conditional
create (asking twice books once).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.messenger.ehr.domain.connection import Coding

BOOKING_SYSTEM = "urn:revisit:booking-request"
CONFLICT_CODES = {"conflict", "duplicate", "business-rule", "lock-error"}


@dataclass(frozen=True)
class ScheduleInfo:
    schedule_id: str
    practitioner_ids: tuple[str, ...] = ()
    location_ids: tuple[str, ...] = ()
    service_tokens: frozenset[str] = frozenset()


@dataclass(frozen=True)
class EhrSlot:
    slot_id: str
    start: datetime
    end: datetime | None
    schedule_id: str | None
    status: str
    service_tokens: frozenset[str] = field(default_factory=frozenset)


def instant(value: Any, zone: ZoneInfo | None = None) -> datetime | None:
    """A FHIR instant; a time without an offset (some EHRs send local times) is read in the
    EHR's own zone (the connection's ``time_zone``), and refused when none is known."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=zone) if zone is not None and "T" in value else None
    return parsed


def reference_id(reference: Any, kind: str) -> str | None:
    ref = reference.get("reference") if isinstance(reference, dict) else None
    if isinstance(ref, str):
        tail = ref.split("/_history")[0].rstrip("/").split("/")
        if len(tail) >= 2 and tail[-2] == kind and tail[-1]:
            return tail[-1]
    return None


def tokens(concepts: Any) -> frozenset[str]:
    """``system|code`` of every coding in a list of CodeableConcepts."""
    out = set()
    for concept in concepts if isinstance(concepts, list) else []:
        for coding in (concept or {}).get("coding") or [] if isinstance(concept, dict) else []:
            if isinstance(coding, dict) and coding.get("code"):
                out.add(f"{coding.get('system') or ''}|{coding['code']}")
    return frozenset(out)


def resources(bundle: Any, kind: str) -> list[dict[str, Any]]:
    """The matches of a searchset Bundle (entries included by ``_include`` are left out)."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return []
    out = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        mode = ((entry.get("search") or {}) if isinstance(entry, dict) else {}).get("mode")
        if not isinstance(resource, dict) or resource.get("resourceType") != kind:
            continue
        if mode in (None, "match"):
            out.append(resource)
    return out


# --- searching --------------------------------------------------------------------------------


def schedule_query(practitioner_id: str | None, location_id: str | None) -> dict[str, str]:
    params = {"active": "true", "_count": "50"}
    if practitioner_id:
        params["actor"] = f"Practitioner/{practitioner_id}"
    elif location_id:
        params["actor"] = f"Location/{location_id}"
    return params


def schedules(bundle: Any) -> dict[str, ScheduleInfo]:
    out = {}
    for resource in resources(bundle, "Schedule"):
        if resource.get("active") is False or not resource.get("id"):
            continue
        actors = resource.get("actor") or []
        out[str(resource["id"])] = ScheduleInfo(
            schedule_id=str(resource["id"]),
            practitioner_ids=tuple(p for a in actors if (p := reference_id(a, "Practitioner"))),
            location_ids=tuple(loc for a in actors if (loc := reference_id(a, "Location"))),
            service_tokens=tokens(resource.get("serviceType")),
        )
    return out


def slot_query(
    schedule_ids: Iterable[str], codings: list[Coding], after: datetime, count: int
) -> dict[str, str]:
    params = {
        "schedule": ",".join(f"Schedule/{s}" for s in schedule_ids),
        "status": "free",
        "start": "ge" + after.isoformat(timespec="seconds"),
        "_sort": "start",
        "_count": str(count),
    }
    if codings:
        params["service-type"] = ",".join(c.token for c in codings)
    return params


def slot(resource: dict[str, Any], zone: ZoneInfo | None = None) -> EhrSlot | None:
    start = instant(resource.get("start"), zone)
    if start is None or not resource.get("id"):
        return None
    return EhrSlot(
        slot_id=str(resource["id"]),
        start=start,
        end=instant(resource.get("end"), zone),
        schedule_id=reference_id(resource.get("schedule"), "Schedule"),
        status=str(resource.get("status") or ""),
        service_tokens=tokens(resource.get("serviceType")),
    )


def free_slots(
    bundle: Any, after: datetime, wanted: set[str], zone: ZoneInfo | None = None
) -> list[EhrSlot]:
    """Free slots after ``after``, earliest first; a slot naming other service types than the
    wanted ones is left out (a server may ignore a search parameter it does not support)."""
    out = []
    for resource in resources(bundle, "Slot"):
        found = slot(resource, zone)
        if found is None or found.status != "free" or found.start <= after:
            continue
        if wanted and found.service_tokens and not (found.service_tokens & wanted):
            continue
        out.append(found)
    return sorted(out, key=lambda s: (s.start, s.slot_id))


def active_patient_ids(bundle: Any) -> set[str]:
    """Ids of the matching patients that are active and not merged into another record."""
    out = set()
    for resource in resources(bundle, "Patient"):
        merged = any(
            isinstance(link, dict) and link.get("type") == "replaced-by"
            for link in resource.get("link") or []
        )
        if resource.get("id") and resource.get("active") is not False and not merged:
            out.add(str(resource["id"]))
    return out


# --- booking ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppointmentRequest:
    booking_request_id: str
    patient_id: str  # the EHR's FHIR Patient id
    slot: EhrSlot
    practitioner_id: str | None
    location_id: str | None
    service_types: tuple[Coding, ...] = ()
    appointment_type: Coding | None = None
    reason: str = "Follow-up care"  # a patient-facing service name, never a diagnosis


def _concept(coding: Coding) -> dict[str, Any]:
    body: dict[str, Any] = {"system": coding.system, "code": coding.code}
    if coding.display:
        body["display"] = coding.display
    return {"coding": [body]}


def appointment(request: AppointmentRequest) -> dict[str, Any]:
    participants: list[dict[str, Any]] = [
        {"actor": {"reference": f"Patient/{request.patient_id}"}, "status": "accepted"}
    ]
    if request.practitioner_id:
        ref = f"Practitioner/{request.practitioner_id}"
        participants.append({"actor": {"reference": ref}, "status": "accepted"})
    if request.location_id:
        ref = f"Location/{request.location_id}"
        participants.append({"actor": {"reference": ref}, "status": "accepted"})
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": "booked",
        "identifier": [{"system": BOOKING_SYSTEM, "value": request.booking_request_id}],
        "slot": [{"reference": f"Slot/{request.slot.slot_id}"}],
        "start": request.slot.start.isoformat(),
        "participant": participants,
        "reasonCode": [{"text": request.reason}],
        "comment": "Chosen by the patient by text message through Revisit",
    }
    if request.slot.end is not None:
        body["end"] = request.slot.end.isoformat()
    if request.service_types:
        body["serviceType"] = [_concept(c) for c in request.service_types]
    if request.appointment_type is not None:
        body["appointmentType"] = _concept(request.appointment_type)
    return body


def if_none_exist(booking_request_id: str) -> str:
    return f"identifier={BOOKING_SYSTEM}|{booking_request_id}"


def is_conflict(status: int, body: Any) -> bool:
    """The slot was taken meanwhile: 409/412, or an OperationOutcome saying conflict."""
    if status in (409, 412):
        return True
    if status not in (400, 422) or not isinstance(body, dict):
        return False
    issues = body.get("issue") if body.get("resourceType") == "OperationOutcome" else None
    return any(isinstance(i, dict) and i.get("code") in CONFLICT_CODES for i in issues or [])
