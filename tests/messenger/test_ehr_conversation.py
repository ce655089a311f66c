"""A clinic with its own EHR connection, through the running messenger: managed through the API
(admins, clinic scope, secrets never shown), booking by text in the EHR (Medplum), a person
when Revisit may not book, and the conversation written to the chart."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.messenger.ehr.domain.connection import secret_prefix
from shared.events.common import (
    Contact,
    ContactKind,
    ContactUse,
    EhrSource,
    RecordIdentifier,
    ServiceLine,
    SourceSystem,
)
from shared.events.ehr import PatientUpserted
from shared.events.escalations import CaseType, EscalationRaised
from shared.events.messages import BookingRequested
from shared.topics import ESCALATIONS, REPLIES
from tests.ehr.authserver import AuthServer
from tests.ehr.fhirserver import MRN_SYSTEM, PRACTICE_CODES, FhirServer, seed_patient, seed_practice
from tests.ehr.fixtures import auth_server, fhir_server, static_token
from tests.messenger.conftest import (
    Messenger,
    day_zone,
    envelope,
    new_clinic,
    phone,
    send_step,
    types_of,
    wait_for,
)

__all__ = ["auth_server", "fhir_server"]
pytestmark = pytest.mark.integration


def connection_body(
    base: str, clinic: str, practice: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "base_url": base,
        "auth": {"kind": "static", "token_env": f"{secret_prefix(clinic)}TOKEN"},
        "time_zone": "America/Chicago",
        "mappings": {
            "service_types": {"skin_check": [{"system": PRACTICE_CODES, "code": "FBSE"}]},
            "practitioners": {"dr-1": practice["practitioner"]},
            "locations": {"loc-1": practice["location"]},
            "identifier_systems": {"DERM1": MRN_SYSTEM},
        },
        **extra,
    }


async def connect(
    messenger: Messenger,
    monkeypatch: pytest.MonkeyPatch,
    auth: AuthServer,
    base: str,
    practice: dict[str, Any],
    **extra: Any,
) -> str:
    clinic = new_clinic()
    monkeypatch.setenv(f"{secret_prefix(clinic)}TOKEN", static_token(auth))
    answer = await messenger.client.put(
        f"/ehr/connections/{clinic}",
        json=connection_body(base, clinic, practice, **extra),
        headers=messenger.token("admin", [clinic]),
    )
    assert answer.status_code == 200, answer.text
    return clinic


async def patient(messenger: Messenger, clinic: str, mrn: str) -> str:
    patient_key = f"{clinic}:P-{uuid.uuid4().hex[:6]}"
    upserted = PatientUpserted(
        source=EhrSource(
            system=SourceSystem.hl7v2,
            record_id=patient_key.split(":")[1],
            source_updated_at=datetime.now(UTC) - timedelta(days=1),
        ),
        given_name="Ana",
        preferred_language="en",
        time_zone=day_zone(),
        contacts=(Contact(kind=ContactKind.phone, value=phone(), use=ContactUse.mobile),),
        identifiers=(RecordIdentifier(value=mrn, assigner="DERM1", type="MR"),),
    )
    await messenger.handle("contacts", envelope(upserted, patient_key))
    return patient_key


async def choose_first_time(messenger: Messenger, patient_key: str) -> list[dict[str, Any]]:
    step = send_step(service_line=ServiceLine.skin_check, provider_id="dr-1")
    await messenger.handle("commands", envelope(step, patient_key))
    await messenger.outbound(patient_key, 1)
    await messenger.reply(patient_key, "BOOK")
    offer = (await messenger.outbound(patient_key, 2, timeout=20))[-1]
    assert "1)" in offer["body"], offer["body"]
    await messenger.reply(patient_key, "1")
    return await messenger.outbound(patient_key, 3, timeout=20)


async def test_a_patient_books_by_text_in_the_clinics_own_ehr_and_the_chart_shows_it(
    messenger: Messenger,
    monkeypatch: pytest.MonkeyPatch,
    auth_server: AuthServer,
    fhir_server: FhirServer,
) -> None:
    practice = await seed_practice(fhir_server)
    mrn = f"MRN{uuid.uuid4().hex[:6]}"
    ehr_patient = await seed_patient(fhir_server, mrn)
    clinic = await connect(
        messenger, monkeypatch, auth_server, fhir_server.base, practice, chart_messages=True
    )
    patient_key = await patient(messenger, clinic, mrn)
    sent = await choose_first_time(messenger, patient_key)
    assert sent[-1]["body"].startswith("Thank you! We have requested")
    [appointment] = await fhir_server.search("Appointment", patient=f"Patient/{ehr_patient}")
    assert appointment["slot"] == [{"reference": f"Slot/{practice['free'][0]}"}]
    events = await messenger.events(
        REPLIES.name, patient_key, lambda es: "BookingRequested" in types_of(es)
    )
    [booking] = [e.payload for e in events if isinstance(e.payload, BookingRequested)]
    assert booking.slot_id == practice["free"][0] and booking.provider_id == "dr-1"

    # Three messages out and two replies in: each becomes a Communication in the chart.
    async def charted() -> bool:
        found = await fhir_server.search("Communication", subject=f"Patient/{ehr_patient}")
        return len(found) == 5

    assert await wait_for(charted, timeout=20)
    found = await fhir_server.search("Communication", subject=f"Patient/{ehr_patient}")
    bodies = {c["payload"][0]["contentString"] for c in found}
    assert {"BOOK", "1", sent[-1]["body"]} <= bodies
    inbound = [c for c in found if c["sender"] == {"reference": f"Patient/{ehr_patient}"}]
    assert len(inbound) == 2 and all("received" in c for c in inbound)
    [confirmation] = [c for c in found if c["payload"][0]["contentString"] == sent[-1]["body"]]
    assert confirmation["about"] == [{"reference": f"Appointment/{appointment['id']}"}]


async def test_an_ehr_without_writes_gives_staff_a_task_and_the_patient_a_person(
    messenger: Messenger,
    monkeypatch: pytest.MonkeyPatch,
    auth_server: AuthServer,
    fhir_server: FhirServer,
) -> None:
    practice = await seed_practice(fhir_server)
    mrn = f"MRN{uuid.uuid4().hex[:6]}"
    ehr_patient = await seed_patient(fhir_server, mrn)
    clinic = await connect(messenger, monkeypatch, auth_server, fhir_server.readonly, practice)
    patient_key = await patient(messenger, clinic, mrn)
    sent = await choose_first_time(messenger, patient_key)
    assert "a person will confirm it with you" in sent[-1]["body"]
    assert await fhir_server.search("Appointment", patient=f"Patient/{ehr_patient}") == []
    cases = await messenger.events(
        ESCALATIONS.name, patient_key, lambda es: "EscalationRaised" in types_of(es)
    )
    [case] = [e.payload for e in cases if isinstance(e.payload, EscalationRaised)]
    assert case.case_type is CaseType.booking_by_hand
    answer = await messenger.client.get(
        "/ehr/booking-tasks",
        params={"clinic_id": clinic},
        headers=messenger.token("operator", [clinic]),
    )
    [task] = answer.json()["tasks"]
    assert task["escalation_id"] == case.escalation_id and task["open"] is True
    assert task["reason"] == "no_write_access"
    assert task["details"]["ehr_patient_id"] == ehr_patient
    assert task["details"]["practitioner_id"] == practice["practitioner"]
    assert task["details"]["slot_id"] == practice["free"][0]
    replies = await messenger.events(
        REPLIES.name, patient_key, lambda es: "BookingRequested" in types_of(es)
    )
    assert "BookingRequested" in types_of(replies)


async def test_a_patient_the_ehr_does_not_know_goes_to_a_person_before_any_booking(
    messenger: Messenger,
    monkeypatch: pytest.MonkeyPatch,
    auth_server: AuthServer,
    fhir_server: FhirServer,
) -> None:
    practice = await seed_practice(fhir_server)
    clinic = await connect(messenger, monkeypatch, auth_server, fhir_server.base, practice)
    patient_key = await patient(messenger, clinic, "MRN-NOT-IN-THE-EHR")
    sent = await choose_first_time(messenger, patient_key)
    assert "a person will confirm it with you" in sent[-1]["body"]
    cases = await messenger.events(
        ESCALATIONS.name, patient_key, lambda es: "EscalationRaised" in types_of(es)
    )
    [case] = [e.payload for e in cases if isinstance(e.payload, EscalationRaised)]
    assert case.case_type is CaseType.patient_not_matched
    assert (await fhir_server.read("Slot", practice["free"][0]))["status"] == "free"


async def test_connections_are_for_admins_of_the_clinic_and_never_show_a_secret(
    messenger: Messenger, monkeypatch: pytest.MonkeyPatch, fhir_server: FhirServer
) -> None:
    clinic, other = new_clinic(), new_clinic()
    practice = {"practitioner": "p1", "location": "l1"}
    body = connection_body(fhir_server.base, clinic, practice)
    url = f"/ehr/connections/{clinic}"
    monkeypatch.setenv(f"{secret_prefix(clinic)}TOKEN", "the-secret-token-value")
    for headers, status in (
        (messenger.token("operator", [clinic]), 403),
        (messenger.token("admin", [other]), 403),
        ({}, 401),
    ):
        assert (await messenger.client.put(url, json=body, headers=headers)).status_code == status
    admin = messenger.token("admin", [clinic])
    assert (await messenger.client.get(url, headers=admin)).status_code == 404
    outside = {**body, "auth": {"kind": "static", "token_env": "DATABASE_URL"}}
    refused = await messenger.client.put(url, json=outside, headers=admin)
    assert refused.status_code == 422 and secret_prefix(clinic) in refused.text
    put = await messenger.client.put(url, json=body, headers=admin)
    got = await messenger.client.get(url, headers=admin)
    for answer in (put, got):
        assert answer.status_code == 200
        assert "the-secret-token-value" not in answer.text
    assert got.json()["secrets_set"] == {f"{secret_prefix(clinic)}TOKEN": True}
    assert (await messenger.client.delete(url, headers=admin)).status_code == 204
    assert (await messenger.client.get(url, headers=admin)).status_code == 404
