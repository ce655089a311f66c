"""PID (and the message's own timestamps) -> the patient's id and PatientUpserted."""

from __future__ import annotations

from datetime import datetime

from services.ingest.domain import Fact, MappingContext, Problem, Refused, build
from services.ingest.hl7v2.fields import Repetition, Seg, timestamp
from services.ingest.hl7v2.reading import Hl7Message
from services.ingest.mapping.contacts import (
    ContactCandidate,
    email_address,
    language_tag,
    phone_e164,
    ranked,
)
from services.ingest.mapping.ids import required_id
from services.ingest.mapping.places import state_of_address, zone_from_address
from shared.events.common import (
    ContactKind,
    ContactUse,
    EhrSource,
    RecordIdentifier,
    SourceSystem,
    is_record_identifier,
)
from shared.events.ehr import PatientUpserted

# XPN-7 name types, most preferred first for a greeting: display, nickname, legal, unspecified.
_NAME_TYPES = ("D", "N", "L", "U", "")
_USE = {"PRN": ContactUse.home, "ORN": ContactUse.home, "WPN": ContactUse.work}
_USE |= {"VHN": ContactUse.temp}
_NOT_REACHABLE = {"FX", "MD", "BP", "TDD", "TTY"}
_NOT_THE_PATIENT = {"ASN", "EMR", "BPN"}  # answering service, emergency contact, beeper


def message_time(msg: Hl7Message, ctx: MappingContext) -> datetime:
    """When the source recorded this event: EVN-2, else MSH-7, else when it reached us."""
    evn = msg.one("EVN")
    if evn is not None:
        found = timestamp(evn.value(2), ctx.local_zone, evn.loc(2))
        if found:
            return found[0]
    msh = msg.segments[0]
    found = timestamp(msh.value(7), ctx.local_zone, "MSH-7")
    return found[0] if found else ctx.received_at


def require_pid(msg: Hl7Message) -> Seg:
    pid = msg.one("PID")
    if pid is None:
        raise Refused([Problem("PID", "required: the patient (PID segment)", "100")])
    return pid


def patient_id(pid: Seg) -> str:
    """PID-3's medical record number (CX-5 = MR), else its first id, else PID-2 (v2.3 and older)."""
    reps = [r for r in pid.reps(3) if pid.part(r, 1)]
    chosen = next((r for r in reps if pid.part(r, 5).upper() == "MR"), None) or (
        reps[0] if reps else None
    )
    if chosen is None and pid.value(2):
        return required_id(pid.value(2), pid.loc(2), "the patient's identifier")
    return required_id(pid.part(chosen or [], 1), pid.loc(3), "the patient's identifier (CX-1)")


def patient_upserted(
    msg: Hl7Message, ctx: MappingContext, recorded: datetime | None = None
) -> Fact:
    """PatientUpserted from PID; its time is PID-33 (last update), else when the message was."""
    pid = require_pid(msg)
    pid_id = patient_id(pid)
    updated = timestamp(pid.value(33), ctx.local_zone, pid.loc(33))
    at = updated[0] if updated else recorded or message_time(msg, ctx)
    payload = build(
        PatientUpserted,
        "PID",
        source=EhrSource(system=SourceSystem.hl7v2, record_id=pid_id, source_updated_at=at),
        given_name=_given_name(pid),
        contacts=ranked(
            _contacts(pid, 13, ContactUse.home)
            + _contacts(pid, 14, ContactUse.work)
            + _contacts(pid, 40, ContactUse.home)
        ),
        preferred_language=language_tag(pid.value(15, 1)) or language_tag(pid.value(15, 4)),
        time_zone=_zone(pid),
        home_state=_state(pid),
        deceased=pid.value(30).upper() == "Y" or bool(pid.value(29)),
        identifiers=record_identifiers(pid),
    )
    return Fact(pid_id, payload, at)


def record_identifiers(pid: Seg) -> tuple[RecordIdentifier, ...]:
    """PID-3's record numbers: CX-1 with its assigning authority (CX-4: namespace id, and the
    universal id as ``urn:oid:`` when it is an ISO OID) and type (CX-5). SSNs, licences and
    other identifiers that are not a record number are left out."""
    out: list[RecordIdentifier] = []
    for rep in pid.reps(3):
        value, kind = pid.part(rep, 1), pid.part(rep, 5).upper() or None
        namespace = pid.part(rep, 4, 1) or None
        universal, universal_type = pid.part(rep, 4, 2), pid.part(rep, 4, 3).upper()
        system = None
        if universal and universal_type == "ISO":
            system = f"urn:oid:{universal}"
        elif universal and universal_type in {"URI", "URL"}:
            system = universal
        if not value or len(value) > 64 or not (system or namespace):
            continue
        if not is_record_identifier(system or namespace, kind):
            continue
        out.append(
            RecordIdentifier(
                value=value,
                system=system[:255] if system else None,
                assigner=namespace[:64] if namespace else None,
                type=kind[:10] if kind else None,
            )
        )
    return tuple(out[:10])


def _given_name(pid: Seg) -> str | None:
    names = [r for r in pid.reps(5) if pid.part(r, 2)]
    for kind in _NAME_TYPES:
        for rep in names:
            if pid.part(rep, 7).upper() == kind:
                return pid.part(rep, 2)[:100]
    return pid.part(names[0], 2)[:100] if names else None


def _contacts(pid: Seg, position: int, default: ContactUse) -> list[ContactCandidate]:
    out = []
    for rep in pid.reps(position):
        use_code, equipment = pid.part(rep, 2).upper(), pid.part(rep, 3).upper()
        rank_text = pid.part(rep, 18)
        rank = int(rank_text) if rank_text.isdigit() else None
        if use_code == "NET" or equipment in {"INTERNET", "X.400"}:
            address = email_address(pid.part(rep, 4) or pid.part(rep, 1))
            if address:
                out.append(ContactCandidate(ContactKind.email, address, default, rank))
            continue
        if equipment in _NOT_REACHABLE or use_code in _NOT_THE_PATIENT:
            continue
        number = phone_e164(_number(pid, rep))
        if number:
            use = ContactUse.mobile if equipment == "CP" else _USE.get(use_code, default)
            out.append(ContactCandidate(ContactKind.phone, number, use, rank))
    return out


def _number(pid: Seg, rep: Repetition) -> str:
    """XTN-12 (unformatted), else country + area + local (XTN-5..7), else XTN-1 (v2.3 style)."""
    if pid.part(rep, 12):
        return pid.part(rep, 12)
    area, local = pid.part(rep, 6), pid.part(rep, 7)
    if area and local:
        country = pid.part(rep, 5)
        return f"+{country}{area}{local}" if country else f"{area}{local}"
    return pid.part(rep, 1)


def _state(pid: Seg) -> str | None:
    for rep in pid.reps(11):
        state = state_of_address(pid.part(rep, 4), pid.part(rep, 6))
        if state:
            return state
    return None


def _zone(pid: Seg) -> str | None:
    for rep in pid.reps(11):
        zone = zone_from_address(pid.part(rep, 4), pid.part(rep, 6))
        if zone:
            return zone
    return None
