"""Booking in one clinic's EHR through its FHIR API, with the practice's own codes.

``find_slots``: the EHR's schedules for the practitioner (or the location, or every active
schedule when any provider will do), then their free slots of the mapped service types.
``book``: only where the connection may write; the patient must match exactly one EHR patient;
an appointment Revisit already created for this request is returned as it is; the slot is read
again (a slot taken meanwhile is ``taken``, and the conversation offers the next times); then a
conditional create. A refusal hands the booking to staff with what they need to book by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messenger.domain.templates import service_name
from services.messenger.ehr import store
from services.messenger.ehr.client import EhrUnavailable, FhirClient
from services.messenger.ehr.domain import identity as ident
from services.messenger.ehr.domain import resources as fhir
from services.messenger.ehr.domain.connection import Connection, PatientIds
from services.messenger.ehr.domain.handoff import HandoffReason
from services.messenger.scheduling.base import (
    Booked,
    BookingResult,
    SchedulingAdapter,
    Slot,
    SlotQuery,
)
from shared.events.common import ServiceLine

_NEEDS_PERSON = {
    ident.Match.none: HandoffReason.patient_not_found,
    ident.Match.several: HandoffReason.patient_ambiguous,
    ident.Match.no_identifier: HandoffReason.no_identifier,
}


class EhrScheduling(SchedulingAdapter):
    name = "ehr"

    def __init__(
        self,
        connection: Connection,
        client: FhirClient,
        sessions: async_sessionmaker[AsyncSession],
        now: Callable[[], datetime],
    ) -> None:
        self.connection = connection
        self.client = client
        self._sessions = sessions
        self._now = now
        zone = connection.settings.time_zone
        self.zone = ZoneInfo(zone) if zone else None  # for EHR times sent without an offset

    # --- slots ----------------------------------------------------------------------------

    async def schedules(self, query: SlotQuery) -> dict[str, fhir.ScheduleInfo]:
        m = self.connection.mappings
        practitioner = m.practitioner(query.provider_id) if query.provider_id else None
        location = m.location(query.location_id) if query.location_id else None
        answer = await self.client.search("Schedule", fhir.schedule_query(practitioner, location))
        return fhir.schedules(answer.body) if answer.ok else {}

    async def find_slots(self, query: SlotQuery) -> list[Slot]:
        m = self.connection.mappings
        codings = m.codings_for(query.service_line)
        found = await self.schedules(query)
        if codings:  # a schedule that names other service types only is not for this one
            wanted = {c.token for c in codings}
            found = {
                k: s for k, s in found.items() if not s.service_tokens or s.service_tokens & wanted
            }
        if not found:
            return []
        params = fhir.slot_query(sorted(found), codings, query.after, max(query.limit * 3, 10))
        answer = await self.client.search("Slot", params)
        if not answer.ok:
            return []
        out = []
        wanted = {c.token for c in codings}
        for ehr_slot in fhir.free_slots(answer.body, query.after, wanted, self.zone):
            schedule = found.get(ehr_slot.schedule_id or "")
            if schedule is None:
                continue
            practitioners, locations = schedule.practitioner_ids, schedule.location_ids
            out.append(
                Slot(
                    slot_id=ehr_slot.slot_id,
                    start=ehr_slot.start,
                    end=ehr_slot.end,
                    provider_id=m.provider_of(practitioners[0]) if practitioners else None,
                    location_id=m.location_of(locations[0]) if locations else query.location_id,
                )
            )
        return out[: query.limit]

    async def slot_is_free(self, slot_id: str) -> bool:
        """Whether the EHR still shows the slot free (read again at booking time)."""
        answer = await self.client.read("Slot", slot_id)
        ok = answer.ok and isinstance(answer.body, dict)
        found = fhir.slot(answer.body, self.zone) if ok else None
        return found is not None and found.status == "free"

    # --- who the patient is ---------------------------------------------------------------

    async def resolve(self, patient_key: str) -> ident.Identity:
        now = self._now()
        async with self._sessions() as session:
            known = await store.identifiers(session, patient_key)
            cached = await store.link(session, patient_key)
        if cached and ident.still_fresh(cached[1], now):
            return ident.Identity(ident.Match.one, cached[0], "cache")
        if self.connection.settings.patient_ids is PatientIds.fhir_id:
            found = await self._same_id(patient_key.split(":", 1)[1])
        else:
            found = {}
            for system, token in ident.search_tokens(
                known, self.connection.mappings.identifier_systems
            ):
                answer = await self.client.search("Patient", {"identifier": token}, private=True)
                if answer.ok:
                    found.setdefault(system, set()).update(fhir.active_patient_ids(answer.body))
        decided = ident.decide(found)
        async with self._sessions() as session, session.begin():
            if decided.match is ident.Match.one and decided.patient_id:
                clinic_id = patient_key.split(":", 1)[0]
                system = decided.matched_on or ""
                await store.save_link(
                    session, clinic_id, patient_key, decided.patient_id, system, now
                )
            else:
                await store.forget_link(session, patient_key)
        return decided

    async def _same_id(self, patient_id: str) -> dict[str, set[str]]:
        answer = await self.client.read("Patient", patient_id)
        bundle = {"resourceType": "Bundle", "entry": [{"resource": answer.body}]}
        return {"Patient.id": fhir.active_patient_ids(bundle) if answer.ok else set()}

    # --- booking ----------------------------------------------------------------------------

    def _details(
        self, slot: Slot, request_id: str, line: ServiceLine | None, patient_id: str | None
    ) -> dict[str, str]:
        m = self.connection.mappings
        details = {"slot_id": slot.slot_id, "start": slot.start.isoformat()}
        details["booking_request_id"] = request_id
        if slot.end:
            details["end"] = slot.end.isoformat()
        if slot.provider_id:
            details["practitioner_id"] = m.practitioner(slot.provider_id)
        if slot.location_id:
            details["location_id"] = m.location(slot.location_id)
        if line is not None:
            details["service_types"] = ",".join(c.token for c in m.codings_for(line))
        if patient_id:
            details["ehr_patient_id"] = patient_id
        return details

    async def book(
        self,
        slot: Slot,
        *,
        clinic_id: str,
        patient_id: str,
        booking_request_id: str,
        service_line: ServiceLine | None = None,
    ) -> BookingResult:
        def person(reason: HandoffReason, ehr_patient: str | None = None) -> BookingResult:
            details = self._details(slot, booking_request_id, service_line, ehr_patient)
            return BookingResult(Booked.needs_person, reason=reason.value, details=details)

        patient_key = f"{clinic_id}:{patient_id}"
        if not self.connection.can_write_appointments():
            # Staff book it; the EHR's patient id helps them when it can be found.
            try:
                known = await self.resolve(patient_key)
            except EhrUnavailable:
                known = ident.Identity(ident.Match.none)
            return person(HandoffReason.no_write_access, known.patient_id)
        who = await self.resolve(patient_key)
        if who.match is not ident.Match.one or not who.patient_id:
            return person(_NEEDS_PERSON.get(who.match, HandoffReason.patient_not_found))
        # Asked before (a retry after a crash): the appointment is already there.
        earlier = await self.client.search(
            "Appointment", {"identifier": f"{fhir.BOOKING_SYSTEM}|{booking_request_id}"}
        )
        made = fhir.resources(earlier.body, "Appointment") if earlier.ok else []
        if made and made[0].get("id"):
            return BookingResult(Booked.booked, str(made[0]["id"]))
        read = await self.client.read("Slot", slot.slot_id)
        ok = read.ok and isinstance(read.body, dict)
        current = fhir.slot(read.body, self.zone) if ok else None
        if read.status in (404, 410) or (current is not None and current.status != "free"):
            return BookingResult(Booked.taken)
        body = fhir.appointment(
            self.appointment_request(
                slot, current, who.patient_id, booking_request_id, service_line
            )
        )
        created = await self.client.create(
            "Appointment", body, if_none_exist=fhir.if_none_exist(booking_request_id)
        )
        if created.ok and (appointment_id := created.created_id("Appointment")):
            await self._remember(clinic_id, patient_key, appointment_id, slot, booking_request_id)
            return BookingResult(Booked.booked, appointment_id)
        if fhir.is_conflict(created.status, created.body):
            return BookingResult(Booked.taken)
        return person(HandoffReason.ehr_refused, who.patient_id)

    def appointment_request(
        self,
        slot: Slot,
        current: fhir.EhrSlot | None,
        patient_id: str,
        request_id: str,
        line: ServiceLine | None,
    ) -> fhir.AppointmentRequest:
        m = self.connection.mappings
        ehr_slot = current or fhir.EhrSlot(slot.slot_id, slot.start, slot.end, None, "free")
        return fhir.AppointmentRequest(
            booking_request_id=request_id,
            patient_id=patient_id,
            slot=ehr_slot,
            practitioner_id=m.practitioner(slot.provider_id) if slot.provider_id else None,
            location_id=m.location(slot.location_id) if slot.location_id else None,
            service_types=tuple(m.codings_for(line)) if line else (),
            appointment_type=m.appointment_types.get(line) if line else None,
            reason=service_name(line, "en").capitalize() if line else "Follow-up care",
        )

    async def _remember(
        self, clinic_id: str, patient_key: str, appointment_id: str, slot: Slot, request_id: str
    ) -> None:
        row: dict[str, Any] = {
            "booking_request_id": request_id,
            "clinic_id": clinic_id,
            "patient_key": patient_key,
            "appointment_id": appointment_id,
            "slot_id": slot.slot_id,
            "sequence_id": None,
            "created_at": self._now(),
        }
        async with self._sessions() as session, session.begin():
            await store.save_appointment(session, **row)
