"""Appointment -> AppointmentFacts (the shell decides booked vs rescheduled from history).

Status: booked -> booked; proposed/pending/waitlist -> recorded, not booked; arrived,
checked-in, fulfilled -> kept; cancelled -> cancelled (cancelationReason says by whom and why);
entered-in-error -> cancelled as entered in error (never a reason to reach out); noshow ->
no-show. The service line comes from serviceType, then appointmentType, then the ServiceRequest
the appointment is based on (when it is in the same Bundle); never from reasonCode.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.ingest.domain import Problem, Refused
from services.ingest.fhir.context import DocumentContext, codings, text_of
from services.ingest.fhir.reading import Entry
from services.ingest.mapping.appointments import AppointmentFacts, AppointmentStatus, cancellation
from services.ingest.mapping.ids import required_id
from shared.events.common import Initiator
from shared.events.ehr import CancellationReason

_S = AppointmentStatus
_STATUS = {
    "proposed": _S.proposed,
    "pending": _S.proposed,
    "waitlist": _S.proposed,
    "booked": _S.booked,
    "arrived": _S.kept,
    "checked-in": _S.kept,
    "fulfilled": _S.kept,
    "cancelled": _S.cancelled,
    "entered-in-error": _S.cancelled,
    "noshow": _S.noshow,
}
_ATTENDING = {"ATND", "PPRF", "SPRF", "PART", "CON"}


def map_appointment(entry: Entry, doc: DocumentContext) -> AppointmentFacts:
    appt = entry.resource
    loc = entry.loc
    status = _STATUS.get(appt.status or "")
    if status is None:
        raise Refused([Problem(f"{loc}.status", "not an R4 appointment status")])
    source = doc.source(appt)
    who, why = cancellation(None)
    reason_text = None
    if appt.status == "entered-in-error":
        who, why = Initiator.practice, CancellationReason.entered_in_error
    elif appt.status == "cancelled" and appt.cancelationReason is not None:
        for coding in appt.cancelationReason.coding or []:
            who, why = cancellation(coding.code)
            if why is not CancellationReason.unknown:
                break
        reason_text = text_of(appt.cancelationReason)
    start = doc.instant(appt.start)
    end = doc.instant(appt.end)
    return AppointmentFacts(
        patient_id=_patient(appt, loc, doc),
        appointment_id=required_id(appt.id, f"{loc}.id", "the appointment's id"),
        status=status,
        start=start,
        service_line=doc.ctx.service_lines.first(
            codings(appt.serviceType, appt.appointmentType, _based_on_codes(appt, doc))
        ),
        provider_id=_provider(appt, doc),
        location_id=next(
            (rid for p in appt.participant or [] if (rid := doc.id_of(p.actor, "Location"))), None
        ),
        source=source,
        loc=loc,
        start_loc=f"{loc}.start",
        duration_minutes=_minutes(start, end, appt.minutesDuration),
        treatment_plan_id=_plan(appt, doc),
        cancelled_by=who,
        reason_code=why,
        reason_text=reason_text,
        arrived_at=source.source_updated_at if appt.status in {"arrived", "checked-in"} else None,
    )


def _patient(appt: Any, loc: str, doc: DocumentContext) -> str:
    found: list[str] = []
    for index, participant in enumerate(appt.participant or []):
        actor = participant.actor
        if actor is None:
            continue
        kind, rid = doc.target(actor)
        claims = kind == "Patient" or (actor.reference or "").startswith("Patient")
        if claims and not rid:
            raise Refused([Problem(f"{loc}.participant[{index}].actor", "no Patient reference")])
        if kind == "Patient" and rid:
            found.append(rid)
    if not found:
        raise Refused([Problem(f"{loc}.participant", "no Patient reference")])
    if len(set(found)) > 1:
        raise Refused([Problem(f"{loc}.participant", "more than one Patient: one per appointment")])
    return found[0]


def _provider(appt: Any, doc: DocumentContext) -> str | None:
    people = [p for p in appt.participant or [] if doc.practitioner(p.actor)]
    attending = [p for p in people if any(c in _ATTENDING for _s, c in codings(p.type))]
    chosen = (attending or people or [None])[0]
    return doc.practitioner(chosen.actor) if chosen is not None else None


def _based_on_codes(appt: Any, doc: DocumentContext) -> list[Any]:
    out = []
    for ref in appt.basedOn or []:
        request = doc.entry(ref)
        if request is not None and request.resource_type == "ServiceRequest":
            out.append(request.resource.code)
    return out


def _plan(appt: Any, doc: DocumentContext) -> str | None:
    for ref in appt.basedOn or []:
        request = doc.entry(ref)
        if request is not None and request.resource_type == "ServiceRequest":
            for plan in request.resource.basedOn or []:
                found = doc.id_of(plan, "CarePlan")
                if found:
                    return found
    return None


def _minutes(start: Any, end: Any, stated: int | None) -> int | None:
    options = []
    if start is not None and end is not None:
        options.append(round((end - start) / timedelta(minutes=1)))
    if stated:
        options.append(int(stated))
    return next((m for m in options if 5 <= m <= 720), None)
