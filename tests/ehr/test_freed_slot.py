"""A freed slot found in an independent FHIR server (Medplum): the free Slot a cancellation
left, at that practitioner, service type and start; gone once it is booked, and a second
patient's booking of it is ``taken``."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messenger.scheduling.base import Booked
from shared.events.common import ServiceLine
from tests.ehr.authserver import AuthServer
from tests.ehr.fhirserver import FhirServer, seed_patient, seed_practice
from tests.ehr.test_booking import adapter, patient_with_mrn, query

pytestmark = pytest.mark.integration


async def test_the_freed_slot_is_the_free_slot_at_that_start_until_someone_books_it(
    fhir_server: FhirServer, auth_server: AuthServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    practice = await seed_practice(fhir_server)
    first_mrn, second_mrn = f"MRN{uuid.uuid4().hex[:6]}", f"MRN{uuid.uuid4().hex[:6]}"
    await seed_patient(fhir_server, first_mrn)
    await seed_patient(fhir_server, second_mrn)
    free = await fhir_server.read("Slot", practice["free"][1])
    start = datetime.fromisoformat(free["start"].replace("Z", "+00:00"))
    async with httpx.AsyncClient() as http:
        ehr = await adapter(fhir_server, auth_server, sessions, practice, http)
        clinic = ehr.connection.clinic_id
        found = await ehr.freed_slot(query(ehr), start)
        assert found is not None and found.slot_id == practice["free"][1]
        assert found.provider_id == "dr-1" and found.start == start
        # No free slot at a time the schedule has none, or for another practitioner.
        assert await ehr.freed_slot(query(ehr), start + timedelta(minutes=10)) is None
        assert await ehr.freed_slot(query(ehr, provider="dr-unknown"), start) is None
        # The busy slot (someone's appointment) is not freed.
        busy = await fhir_server.read("Slot", practice["busy"])
        busy_start = datetime.fromisoformat(busy["start"].replace("Z", "+00:00"))
        assert await ehr.freed_slot(query(ehr), busy_start) is None

        first = await patient_with_mrn(sessions, clinic, first_mrn)
        second = await patient_with_mrn(sessions, clinic, second_mrn)
        kw = {"clinic_id": clinic, "service_line": ServiceLine.skin_check}
        won = await ehr.book(found, patient_id=first, booking_request_id=str(uuid.uuid4()), **kw)
        lost = await ehr.book(found, patient_id=second, booking_request_id=str(uuid.uuid4()), **kw)
        assert won.outcome is Booked.booked and lost.outcome is Booked.taken
        assert await ehr.freed_slot(query(ehr), start) is None
    made = await fhir_server.search("Appointment", slot=f"Slot/{found.slot_id}")
    assert len(made) == 1
