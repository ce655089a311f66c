"""Booking in an independent FHIR server (Medplum's router and in-memory repository): the EHR's
own schedules and service types, identity by record number, conditional create, a slot taken
meanwhile, an EHR that takes no writes, and ``revisit ehr check``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messenger.ehr import store
from services.messenger.ehr.auth import StaticToken
from services.messenger.ehr.check import run_check
from services.messenger.ehr.client import Answer, FhirClient
from services.messenger.ehr.domain.capabilities import read_capabilities
from services.messenger.ehr.domain.connection import (
    AuthKind,
    AuthSettings,
    CodeMappings,
    Coding,
    Connection,
    ConnectionSettings,
)
from services.messenger.ehr.scheduling import EhrScheduling
from services.messenger.scheduling.base import Booked, Slot, SlotQuery
from shared.events.common import EhrSource, RecordIdentifier, ServiceLine, SourceSystem
from shared.events.ehr import PatientUpserted
from tests.ehr.authserver import AuthServer
from tests.ehr.fhirserver import MRN_SYSTEM, PRACTICE_CODES, FhirServer, seed_patient, seed_practice
from tests.ehr.fixtures import rsa_key, smart_client, static_token

pytestmark = pytest.mark.integration
AFTER = datetime(2031, 3, 1, tzinfo=UTC)
NOW = datetime(2031, 2, 27, tzinfo=UTC)


def mappings(practice: dict[str, Any]) -> CodeMappings:
    return CodeMappings(
        service_types={ServiceLine.skin_check: [Coding(system=PRACTICE_CODES, code="FBSE")]},
        practitioners={"dr-1": practice["practitioner"]},
        locations={"loc-1": practice["location"]},
        identifier_systems={"DERM1": MRN_SYSTEM},
    )


async def adapter(
    server: FhirServer,
    auth: AuthServer,
    sessions: async_sessionmaker[AsyncSession],
    practice: dict[str, Any],
    http: httpx.AsyncClient,
    *,
    base: str | None = None,
) -> EhrScheduling:
    base = base or server.base
    metadata = (await http.get(f"{base}/metadata")).json()
    connection = Connection(
        clinic_id=f"clinic-{uuid.uuid4().hex[:6]}",
        settings=ConnectionSettings(base_url=base, mappings=mappings(practice)),
        capabilities=read_capabilities(metadata),
    )
    client = FhirClient(base, StaticToken(static_token(auth)), http)
    return EhrScheduling(connection, client, sessions, lambda: NOW)


async def patient_with_mrn(
    sessions: async_sessionmaker[AsyncSession], clinic_id: str, mrn: str | None
) -> str:
    patient_id = f"P-{uuid.uuid4().hex[:6]}"
    ids = (RecordIdentifier(value=mrn, assigner="DERM1", type="MR"),) if mrn else ()
    upserted = PatientUpserted(
        source=EhrSource(system=SourceSystem.hl7v2, record_id=patient_id, source_updated_at=NOW),
        identifiers=ids,
    )
    async with sessions() as session, session.begin():
        await store.save_identifiers(session, clinic_id, f"{clinic_id}:{patient_id}", upserted)
    return patient_id


def query(ehr: EhrScheduling, provider: str | None = "dr-1") -> SlotQuery:
    return SlotQuery(ehr.connection.clinic_id, ServiceLine.skin_check, provider, "loc-1", AFTER)


async def test_slots_come_from_the_practitioners_schedule_with_the_mapped_service_type(
    fhir_server: FhirServer, auth_server: AuthServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    practice = await seed_practice(fhir_server)
    async with httpx.AsyncClient() as http:
        ehr = await adapter(fhir_server, auth_server, sessions, practice, http)
        slots = await ehr.find_slots(query(ehr))
    assert [s.slot_id for s in slots] == practice["free"][:3]  # not busy, not OTHER; in order
    assert {(s.provider_id, s.location_id) for s in slots} == {("dr-1", "loc-1")}
    assert [s.start for s in slots] == sorted(s.start for s in slots)


async def test_a_practitioner_with_no_schedule_has_no_slots(
    fhir_server: FhirServer, auth_server: AuthServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    practice = await seed_practice(fhir_server)
    async with httpx.AsyncClient() as http:
        ehr = await adapter(fhir_server, auth_server, sessions, practice, http)
        assert await ehr.find_slots(query(ehr, provider="dr-unknown")) == []


async def test_booking_creates_the_appointment_once_and_takes_the_slot(
    fhir_server: FhirServer, auth_server: AuthServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    practice = await seed_practice(fhir_server)
    mrn = f"MRN{uuid.uuid4().hex[:6]}"
    ehr_patient = await seed_patient(fhir_server, mrn)
    async with httpx.AsyncClient() as http:
        ehr = await adapter(fhir_server, auth_server, sessions, practice, http)
        clinic = ehr.connection.clinic_id
        patient_id = await patient_with_mrn(sessions, clinic, mrn)
        [slot, *_] = await ehr.find_slots(query(ehr))
        request_id = str(uuid.uuid4())
        kw = {"clinic_id": clinic, "patient_id": patient_id, "service_line": ServiceLine.skin_check}
        first = await ehr.book(slot, booking_request_id=request_id, **kw)
        again = await ehr.book(slot, booking_request_id=request_id, **kw)
        other = await ehr.book(slot, booking_request_id=str(uuid.uuid4()), **kw)
    assert first.outcome is Booked.booked and again.appointment_id == first.appointment_id
    assert other.outcome is Booked.taken  # the next slots are offered by the conversation
    made = await fhir_server.search(
        "Appointment", identifier=f"urn:revisit:booking-request|{request_id}"
    )
    assert len(made) == 1
    appointment = made[0]
    actors = {p["actor"]["reference"] for p in appointment["participant"]}
    assert actors == {
        f"Patient/{ehr_patient}",
        f"Practitioner/{practice['practitioner']}",
        f"Location/{practice['location']}",
    }
    assert appointment["serviceType"][0]["coding"][0] == {"system": PRACTICE_CODES, "code": "FBSE"}
    assert appointment["reasonCode"] == [{"text": "Skin check"}]
    assert appointment["status"] == "booked" and appointment["end"]
    assert (await fhir_server.read("Slot", slot.slot_id))["status"] == "busy"
    async with sessions() as session:
        assert (
            await store.latest_appointment(session, f"{clinic}:{patient_id}")
            == first.appointment_id
        )


class StaleSlotReads(FhirClient):
    """Reads a slot as it was a moment ago: someone else books it between read and create."""

    async def read(self, kind: str, resource_id: str) -> Answer:
        answer = await super().read(kind, resource_id)
        if kind == "Slot" and isinstance(answer.body, dict):
            return Answer(answer.status, {**answer.body, "status": "free"}, answer.location)
        return answer


async def test_a_slot_taken_between_the_check_and_the_create_is_a_conflict_not_a_refusal(
    fhir_server: FhirServer, auth_server: AuthServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    practice = await seed_practice(fhir_server)
    mrn = f"MRN{uuid.uuid4().hex[:6]}"
    await seed_patient(fhir_server, mrn)
    async with httpx.AsyncClient() as http:
        ehr = await adapter(fhir_server, auth_server, sessions, practice, http)
        patient_id = await patient_with_mrn(sessions, ehr.connection.clinic_id, mrn)
        ehr.client = StaleSlotReads(ehr.client.base, ehr.client.tokens, http)
        busy = Slot(practice["busy"], AFTER, provider_id="dr-1", location_id="loc-1")
        result = await ehr.book(
            busy,
            clinic_id=ehr.connection.clinic_id,
            patient_id=patient_id,
            booking_request_id="r-1",
        )
    assert result.outcome is Booked.taken


@pytest.mark.parametrize(
    ("mrns", "known", "reason"),
    [
        ([], "MRN-NOBODY", "patient_not_found"),
        (["dup", "dup"], "dup", "patient_ambiguous"),
        ([], None, "no_identifier"),
    ],
    ids=["none", "several", "no record number"],
)
async def test_a_patient_who_is_not_exactly_one_ehr_patient_goes_to_a_person(
    fhir_server: FhirServer,
    auth_server: AuthServer,
    sessions: async_sessionmaker[AsyncSession],
    mrns: list[str],
    known: str | None,
    reason: str,
) -> None:
    practice = await seed_practice(fhir_server)
    tag = uuid.uuid4().hex[:6]
    for mrn in mrns:
        await seed_patient(fhir_server, f"{mrn}{tag}")
    async with httpx.AsyncClient() as http:
        ehr = await adapter(fhir_server, auth_server, sessions, practice, http)
        patient_id = await patient_with_mrn(
            sessions, ehr.connection.clinic_id, f"{known}{tag}" if known else None
        )
        [slot, *_] = await ehr.find_slots(query(ehr))
        result = await ehr.book(
            slot, clinic_id=ehr.connection.clinic_id, patient_id=patient_id, booking_request_id=tag
        )
    assert result.outcome is Booked.needs_person and result.reason == reason
    assert (await fhir_server.read("Slot", slot.slot_id))["status"] == "free"  # nothing booked


async def test_an_inactive_record_is_not_a_match(
    fhir_server: FhirServer, auth_server: AuthServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    practice = await seed_practice(fhir_server)
    mrn = f"MRN{uuid.uuid4().hex[:6]}"
    await seed_patient(fhir_server, mrn, active=False)
    async with httpx.AsyncClient() as http:
        ehr = await adapter(fhir_server, auth_server, sessions, practice, http)
        patient_id = await patient_with_mrn(sessions, ehr.connection.clinic_id, mrn)
        found = await ehr.resolve(f"{ehr.connection.clinic_id}:{patient_id}")
    assert found.match.value == "none"


async def test_the_identity_is_cached_then_searched_again(
    fhir_server: FhirServer, auth_server: AuthServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    practice = await seed_practice(fhir_server)
    mrn = f"MRN{uuid.uuid4().hex[:6]}"
    ehr_patient = await seed_patient(fhir_server, mrn)
    async with httpx.AsyncClient() as http:
        ehr = await adapter(fhir_server, auth_server, sessions, practice, http)
        clinic = ehr.connection.clinic_id
        key = f"{clinic}:{await patient_with_mrn(sessions, clinic, mrn)}"
        first = await ehr.resolve(key)
        cached = await ehr.resolve(key)
        await seed_patient(fhir_server, mrn)  # a duplicate record appears in the EHR
        ehr._now = lambda: datetime(2031, 3, 5, tzinfo=UTC)  # more than a day later
        later = await ehr.resolve(key)
    assert (first.patient_id, first.matched_on) == (ehr_patient, MRN_SYSTEM)
    assert cached.matched_on == "cache" and cached.patient_id == ehr_patient
    assert later.match.value == "several"
    async with sessions() as session:
        assert await store.link(session, key) is None


async def test_an_ehr_that_takes_no_writes_gets_a_staff_task_with_what_to_book(
    fhir_server: FhirServer, auth_server: AuthServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    practice = await seed_practice(fhir_server)
    mrn = f"MRN{uuid.uuid4().hex[:6]}"
    ehr_patient = await seed_patient(fhir_server, mrn)
    async with httpx.AsyncClient() as http:
        ehr = await adapter(
            fhir_server, auth_server, sessions, practice, http, base=fhir_server.readonly
        )
        assert not ehr.connection.can_write_appointments()
        patient_id = await patient_with_mrn(sessions, ehr.connection.clinic_id, mrn)
        [slot, *_] = await ehr.find_slots(query(ehr))  # reading works
        result = await ehr.book(
            slot,
            clinic_id=ehr.connection.clinic_id,
            patient_id=patient_id,
            booking_request_id="req-7",
            service_line=ServiceLine.skin_check,
        )
    assert result.outcome is Booked.needs_person and result.reason == "no_write_access"
    assert result.details == {
        "slot_id": slot.slot_id,
        "start": slot.start.isoformat(),
        "end": slot.end.isoformat() if slot.end else "",
        "booking_request_id": "req-7",
        "practitioner_id": practice["practitioner"],
        "location_id": practice["location"],
        "service_types": f"{PRACTICE_CODES}|FBSE",
        "ehr_patient_id": ehr_patient,
    }


def smart_settings(
    server: FhirServer, auth: AuthServer, practice: dict[str, Any], base: str
) -> tuple[ConnectionSettings, dict[str, str]]:
    key = rsa_key()
    client_id = smart_client(auth, key)
    settings = ConnectionSettings(
        base_url=base,
        auth=AuthSettings(
            kind=AuthKind.smart_backend,
            client_id=client_id,
            key_env="REVISIT_EHR_CHECK_KEY",
            key_id=key.kid,
        ),
        mappings=mappings(practice),
    )
    return settings, {"REVISIT_EHR_CHECK_KEY": key.private_pem}


async def test_the_check_passes_capability_auth_slots_and_a_dry_run_without_booking(
    fhir_server: FhirServer, auth_server: AuthServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    practice = await seed_practice(fhir_server)
    settings, secrets = smart_settings(fhir_server, auth_server, practice, fhir_server.base)
    connection = Connection(clinic_id=f"c-{uuid.uuid4().hex[:6]}", settings=settings)
    async with sessions() as session, session.begin():
        await store.save_connection(session, connection.clinic_id, settings, "test")
    before = len(await fhir_server.search("Appointment", _count="1000"))
    lines = await run_check(connection, sessions, secrets, lambda: NOW)
    assert [(x.step, x.status) for x in lines] == [
        ("capability", "PASS"),
        ("auth", "PASS"),
        ("slot search", "PASS"),
        ("dry-run", "PASS"),
    ], [str(x) for x in lines]
    assert "accepted by $validate" in lines[3].detail
    assert len(await fhir_server.search("Appointment", _count="1000")) == before
    async with sessions() as session:
        stored = await store.connection(session, connection.clinic_id)
    assert stored is not None and stored.connection.capabilities is not None


async def test_the_check_says_what_failed_and_why(
    fhir_server: FhirServer, auth_server: AuthServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    practice = await seed_practice(fhir_server)
    settings, _ = smart_settings(fhir_server, auth_server, practice, fhir_server.base)
    connection = Connection(clinic_id="c-missing-key", settings=settings)
    lines = await run_check(connection, sessions, {}, lambda: NOW)
    assert [(x.step, x.status) for x in lines] == [
        ("capability", "PASS"),
        ("auth", "FAIL"),
        ("slot search", "SKIP"),
        ("dry-run", "SKIP"),
    ]
    assert "REVISIT_EHR_CHECK_KEY is not set" in lines[1].detail
    nowhere = Connection(
        clinic_id="c-nowhere",
        settings=ConnectionSettings(base_url=f"{fhir_server.origin}/nothing/fhir"),
    )
    [line] = await run_check(nowhere, sessions, {}, lambda: NOW)
    assert (line.step, line.status) == ("capability", "FAIL")
    assert "CapabilityStatement" in line.detail


async def test_a_record_number_never_travels_in_a_url(
    fhir_server: FhirServer, auth_server: AuthServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    practice = await seed_practice(fhir_server)
    mrn = f"MRN{uuid.uuid4().hex[:6]}"
    await seed_patient(fhir_server, mrn)
    urls: list[str] = []

    async def record(request: httpx.Request) -> None:
        urls.append(str(request.url))

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        ehr = await adapter(fhir_server, auth_server, sessions, practice, http)
        clinic = ehr.connection.clinic_id
        key = f"{clinic}:{await patient_with_mrn(sessions, clinic, mrn)}"
        assert (await ehr.resolve(key)).match.value == "one"
    assert any(u.endswith("/Patient/_search") for u in urls)
    assert not [u for u in urls if mrn in u]  # proxies and HTTP logs keep URLs
