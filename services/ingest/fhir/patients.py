"""Patient -> PatientUpserted."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.ingest.domain import Fact, build
from services.ingest.fhir.context import DocumentContext
from services.ingest.fhir.reading import Entry
from services.ingest.mapping.contacts import (
    ContactCandidate,
    email_address,
    language_tag,
    phone_e164,
    ranked,
)
from services.ingest.mapping.ids import required_id
from services.ingest.mapping.places import state_of_address, zone_from_address
from shared.events.common import ContactKind, ContactUse, RecordIdentifier, is_record_identifier
from shared.events.ehr import PatientUpserted

# HumanName.use, most preferred first for a greeting; old and maiden names are never used.
_NAME_USES = ("usual", "official", None, "temp", "nickname", "anonymous")
_TZ_EXTENSIONS = {
    "http://hl7.org/fhir/StructureDefinition/tz-code",
    "http://hl7.org/fhir/StructureDefinition/timezone",
}


def map_patient(entry: Entry, doc: DocumentContext) -> Fact:
    patient = entry.resource
    patient_id = required_id(patient.id, f"{entry.loc}.id", "the EHR's id for this patient")
    source = doc.source(patient)
    merged_away = any(link.type == "replaced-by" for link in patient.link or [])
    payload = build(
        PatientUpserted,
        entry.loc,
        source=source,
        given_name=_given_name(patient),
        contacts=ranked(_contacts(patient, source.source_updated_at, doc)),
        preferred_language=_language(patient),
        time_zone=_time_zone(patient),
        home_state=_state(patient),
        deceased=bool(patient.deceasedBoolean) or patient.deceasedDateTime is not None,
        active=patient.active is not False and not merged_away,
        identifiers=_identifiers(patient),
    )
    return Fact(patient_id, payload, source.source_updated_at)


def _given_name(patient: Any) -> str | None:
    names = [n for n in patient.name or [] if n.given and n.given[0].strip()]
    for use in _NAME_USES:
        for name in names:
            if name.use == use:
                return str(name.given[0]).strip()[:100]
    return None


def _contacts(patient: Any, now: datetime, doc: DocumentContext) -> list[ContactCandidate]:
    out = []
    for point in patient.telecom or []:
        ended = point.period is not None and point.period.end is not None
        if ended and (doc.instant(point.period.end) or now) < now:
            use = ContactUse.old
        else:
            use = ContactUse(point.use) if point.use in ContactUse.__members__ else ContactUse.home
        if point.system in {"phone", "sms"}:
            number = phone_e164(point.value)
            if number:
                out.append(ContactCandidate(ContactKind.phone, number, use, point.rank))
        elif point.system == "email":
            address = email_address(point.value)
            if address:
                out.append(ContactCandidate(ContactKind.email, address, use, point.rank))
    return out


def _language(patient: Any) -> str | None:
    ordered = sorted(patient.communication or [], key=lambda c: not c.preferred)
    for communication in ordered:
        for coding in communication.language.coding or []:
            tag = language_tag(coding.code)
            if tag:
                return tag
    return None


def _state(patient: Any) -> str | None:
    """The US state of the home address (its allowed hours for messages apply)."""
    addresses = sorted(patient.address or [], key=lambda a: a.use != "home")
    for address in addresses:
        if address.use != "old":
            state = state_of_address(address.state, address.country)
            if state:
                return state
    return None


def _time_zone(patient: Any) -> str | None:
    for extension in patient.extension or []:
        if extension.url in _TZ_EXTENSIONS and extension.valueCode:
            try:
                ZoneInfo(extension.valueCode)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            return str(extension.valueCode)
    addresses = sorted(patient.address or [], key=lambda a: a.use != "home")
    for address in addresses:
        if address.use == "old":
            continue
        zone = zone_from_address(address.state, address.country)
        if zone:
            return zone
    return None


def _identifiers(patient: Any) -> tuple[RecordIdentifier, ...]:
    """The record numbers the EHR keeps for the patient (never SSNs, licences or policies)."""
    out: list[RecordIdentifier] = []
    for identifier in patient.identifier or []:
        system, value = identifier.system, (identifier.value or "").strip()
        kind = next(
            (c.code for c in getattr(identifier.type, "coding", None) or [] if c.code), None
        )
        if identifier.use == "old" or not system or not value or len(value) > 64:
            continue
        if len(system) > 255 or not is_record_identifier(system, kind):
            continue
        out.append(RecordIdentifier(value=value, system=system, type=kind[:10] if kind else None))
    return tuple(out[:10])
