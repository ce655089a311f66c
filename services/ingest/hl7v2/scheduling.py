"""SIU S12-S17 and S26 -> the patient and the appointment facts they carry.

The trigger says what happened; SCH-25 (filler status, a bare code or a coded element, read
from either its identifier or its text) refines S12-S14: a Pending/Waitlist booking is recorded
but not booked, Started/Complete is a kept appointment, Noshow a no-show. For S15/S16 (cancelled,
discontinued), S17 (deleted: entered in error) and S26 (no-show) the trigger decides.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.ingest.domain import MappingContext, Problem, Refused
from services.ingest.hl7v2.fields import Seg, coded, timestamp
from services.ingest.hl7v2.patients import message_time, patient_upserted
from services.ingest.hl7v2.reading import Hl7Message
from services.ingest.mapping.appointments import AppointmentFacts, AppointmentStatus, cancellation
from services.ingest.mapping.drafts import Mapped
from services.ingest.mapping.ids import opaque_id, required_id
from services.ingest.mapping.service_lines import hl7_code_system
from shared.events.common import CodeSystem, EhrSource, Initiator, SourceSystem
from shared.events.ehr import CancellationReason

SIU_TRIGGERS = frozenset({"S12", "S13", "S14", "S15", "S16", "S17", "S26"})
_S = AppointmentStatus
# Filler status (HL7 table 0278 and the words EHRs use instead), lower case.
_FILLER_STATUS: dict[str, AppointmentStatus | str] = {
    **dict.fromkeys(["booked", "scheduled", "sch", "overbook", "confirmed"], _S.booked),
    **dict.fromkeys(["pending", "waitlist", "wait list", "tentative"], _S.proposed),
    **dict.fromkeys(["started", "arrived", "checked in", "checkedin", "checked-in"], _S.kept),
    **dict.fromkeys(["complete", "completed"], "complete"),
    **dict.fromkeys(["cancelled", "canceled", "dc", "discontinued"], _S.cancelled),
    "deleted": "deleted",
    **dict.fromkeys(["noshow", "no show", "no-show"], _S.noshow),
    "blocked": "blocked",
}
_MINUTES = {"min": 1, "m": 1, "mins": 1, "minutes": 1, "h": 60, "hr": 60, "hours": 60, "s": 1 / 60}


def map_siu(msg: Hl7Message, ctx: MappingContext) -> Mapped:
    sch = msg.one("SCH")
    if sch is None:
        raise Refused([Problem("SCH", "required: the schedule activity (SCH segment)", "100")])
    at = message_time(msg, ctx)
    patient = patient_upserted(msg, ctx, at)
    appointment_id = required_id(
        sch.value(2) or sch.value(1), sch.loc(2), "the filler appointment id (SCH-2, or SCH-1)"
    )
    filler = _filler_status(sch)
    notes: list[Problem] = []
    if filler == "blocked":
        notes.append(Problem("SCH-25", "a blocked slot is not a patient appointment"))
        return Mapped((patient,), tuple(notes))
    status, cancelled_by, reason = _outcome(msg.header.trigger, filler, sch)
    start, start_loc, end = _start_and_end(msg, ctx)
    facts = AppointmentFacts(
        patient_id=patient.patient_id,
        appointment_id=appointment_id,
        status=status,
        start=start,
        service_line=ctx.service_lines.first(_codings(msg, sch)),
        provider_id=_provider(msg),
        location_id=_location(msg),
        source=EhrSource(system=SourceSystem.hl7v2, record_id=appointment_id, source_updated_at=at),
        loc="SCH",
        start_loc=start_loc,
        duration_minutes=_duration(msg, sch, start, end),
        cancelled_by=cancelled_by,
        reason_code=reason,
        arrived_at=at if filler == _S.kept else None,
    )
    return Mapped((patient, facts), tuple(notes))


def _filler_status(sch: Seg) -> AppointmentStatus | str | None:
    for code, text, _system in coded(sch, sch.first(25)):
        for word in (code, text):
            found = _FILLER_STATUS.get(word.strip().lower())
            if found is not None:
                return found
    return None


def _outcome(
    trigger: str, filler: AppointmentStatus | str | None, sch: Seg
) -> tuple[AppointmentStatus, Initiator, CancellationReason]:
    who, why = cancellation(sch.value(6))
    if trigger == "S17" or (trigger in {"S12", "S13", "S14"} and filler == "deleted"):
        return _S.cancelled, Initiator.practice, CancellationReason.entered_in_error
    if trigger in {"S15", "S16"}:
        return _S.cancelled, who, why
    if trigger == "S26":
        return _S.noshow, Initiator.unknown, CancellationReason.unknown
    if filler == "complete":
        return _S.kept, Initiator.unknown, CancellationReason.unknown
    if isinstance(filler, AppointmentStatus):
        return filler, who, why
    return _S.booked, Initiator.unknown, CancellationReason.unknown


def _start_and_end(
    msg: Hl7Message, ctx: MappingContext
) -> tuple[datetime | None, str, datetime | None]:
    """The start (first of TQ1-7, SCH-11.4, AIS-4, AIG-8, AIL-6, AIP-6 with a time of day)."""
    tq1, sch = msg.one("TQ1"), msg.one("SCH")
    candidates: list[tuple[Seg | None, int, int]] = [(tq1, 7, 1), (sch, 11, 4)]
    for name, position in (("AIS", 4), ("AIG", 8), ("AIL", 6), ("AIP", 6)):
        candidates += [(seg, position, 1) for seg in msg.all(name)]
    start, start_loc, dated_only = None, "TQ1-7", ""
    for seg, position, component in candidates:
        if seg is None:
            continue
        found = timestamp(seg.value(position, component), ctx.local_zone, seg.loc(position))
        if found is None:
            continue
        if found[1]:
            start, start_loc = found[0], seg.loc(position)
            break
        dated_only = dated_only or seg.loc(position)
    if start is None and dated_only:
        raise Refused([Problem(dated_only, "the appointment start needs a time of day", "102")])
    end = None
    for seg, position, component in ((tq1, 8, 1), (sch, 11, 5)):
        if seg is not None:
            found = timestamp(seg.value(position, component), ctx.local_zone, seg.loc(position))
            if found and found[1]:
                end = found[0]
                break
    return start, start_loc, end


def _duration(
    msg: Hl7Message, sch: Seg, start: datetime | None, end: datetime | None
) -> int | None:
    """Minutes from end - start, else AIS-7/8 (duration, units), else SCH-9/10; 5 to 720 only."""
    options: list[float] = []
    if start and end:
        options.append((end - start) / timedelta(minutes=1))
    ais = msg.one("AIS")
    for seg, amount, unit in ((ais, 7, 8), (sch, 9, 10)):
        if seg is not None and seg.value(amount).replace(".", "", 1).isdigit():
            factor = _MINUTES.get((seg.value(unit) or "min").lower())
            if factor is not None:
                options.append(float(seg.value(amount)) * factor)
    for minutes in options:
        if 5 <= minutes <= 720:
            return round(minutes)
    return None


def _codings(msg: Hl7Message, sch: Seg) -> list[tuple[CodeSystem | None, str | None]]:
    out: list[tuple[CodeSystem | None, str | None]] = []
    fields = [(seg, 3) for seg in msg.all("AIS")] + [(sch, 7), (sch, 8)]
    for seg, position in fields:
        for code, _text, system in coded(seg, seg.first(position)):
            out.append((hl7_code_system(system), code))
    return out


def _provider(msg: Hl7Message) -> str | None:
    for aip in msg.all("AIP"):
        found = opaque_id(aip.value(3))
        if found:
            return found
    pv1 = msg.one("PV1")
    return opaque_id(pv1.value(7)) if pv1 is not None else None


def _location(msg: Hl7Message) -> str | None:
    for ail in msg.all("AIL"):
        found = place_id(ail, 3)
        if found:
            return found
    pv1 = msg.one("PV1")
    return place_id(pv1, 3) if pv1 is not None else None


def place_id(seg: Seg, position: int) -> str | None:
    """A PL's point of care, else its facility, else its room (first subcomponent of each)."""
    rep = seg.first(position)
    for component in (1, 4, 2):
        found = opaque_id(seg.part(rep, component))
        if found:
            return found
    return None
