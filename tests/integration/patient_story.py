"""The synthetic patient's story through the running services, step by step, as the EHR, the
patient and the practice's staff would act: each step waits until the pipeline has done its part."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from services.messenger.providers.twilio import compute_signature
from shared.auth import issue_staff_token
from shared.clock import advance_clock
from tests.integration.patient_world import (
    PRACTICE_SMS,
    PUBLIC_URL,
    SECRET,
    TWILIO_TOKEN,
    World,
    wait_for,
)


def _source(record_id: str, at: str) -> dict[str, Any]:
    return {"system": "json", "record_id": record_id, "source_updated_at": at}


async def seed_patient(world: World) -> None:
    """The EHR sends the patient (FHIR) and a cancellation (native JSON); a refused event too."""
    p = world.patient
    key = {"X-API-Key": world.api_key}
    ingest = world.clients["ingest"]
    fhir_patient = {
        "resourceType": "Patient",
        "id": p.patient_id,
        "meta": {"versionId": "1", "lastUpdated": "2026-03-01T10:00:00Z"},
        "identifier": [
            {"type": {"coding": [{"code": "MR"}]}, "system": "urn:mrn", "value": p.record_number}
        ],
        "name": [{"use": "official", "family": p.family, "given": [p.given]}],
        "birthDate": p.birth_date,
        "telecom": [
            {"system": "phone", "value": p.phone, "use": "mobile", "rank": 1},
            {"system": "email", "value": p.email, "rank": 2},
        ],
        "address": [{"use": "home", "state": "TX", "country": "US"}],
        "communication": [{"language": {"coding": [{"code": "en"}]}, "preferred": True}],
    }
    put = await ingest.put(f"/fhir/r4/Patient/{p.patient_id}", json=fhir_patient, headers=key)
    assert put.status_code == 202, put.text
    cancelled = {
        "type": "AppointmentCancelled",
        "patient_id": p.patient_id,
        "payload": {
            "source": _source(f"appt-{p.record_number[::-1]}", "2026-03-10T13:55:00Z"),
            "appointment_id": f"appt-{p.record_number[::-1]}",
            "start": "2026-03-12T16:00:00Z",
            "service_line": "acne",
            "provider_id": "dr-nair",
            "location_id": "loc-1",
            "cancelled_by": "patient",
        },
    }
    posted = await ingest.post("/events", json={"events": [cancelled]}, headers=key)
    assert posted.status_code == 202, posted.text
    # A refused event carrying PHI where it does not belong: the refusal must not spread it.
    refused = {
        "type": "PatientUpserted",
        "patient_id": p.patient_id,
        "payload": {
            "source": _source(p.patient_id, "not a time"),
            "given_name": p.given,
            "birth_date": p.birth_date,
            "contacts": [{"kind": "phone", "value": p.phone, "use": "mobile", "rank": 1}],
        },
    }
    bad = await ingest.post("/events", json={"events": [refused]}, headers=key)
    assert bad.status_code in (400, 422), bad.text


async def set_up_practice(world: World) -> None:
    messenger = world.clients["messenger"]
    practice = {
        "name": "Bluebonnet Dermatology",
        "phone": "+15125550100",
        "time_zone": "America/Chicago",
        "sms_number": PRACTICE_SMS,
    }
    done = await messenger.put(
        f"/practices/{world.patient.clinic}", json=practice, headers=world.staff()
    )
    assert done.is_success, done.text


async def first_message_sent(world: World) -> None:
    await advance_clock(world.engine, timedelta(hours=2, minutes=5))

    async def sent() -> bool:
        n = await world.scalar(
            "SELECT count(*) FROM messenger.sandbox_messages "
            "WHERE patient_key = :k AND direction = 'outbound'",
            k=world.patient.patient_key,
        )
        return bool(n)

    assert await wait_for(sent, 90), world.logs.getvalue()[-3000:]


async def patient_replies_by_sms(world: World) -> None:
    p = world.patient
    body = (
        f"This is {p.given} {p.family}, Ventadorn-bleeding-since {p.birth_date}: the mole is "
        f"bleeding and growing, call me at {p.phone} or {p.email}"
    )
    sid = "SM" + uuid.uuid4().hex
    pairs = list(
        {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": "AC" + "0" * 32,
            "From": p.phone,
            "To": PRACTICE_SMS,
            "Body": body,
            "NumMedia": "0",
        }.items()
    )
    path = "/webhooks/twilio/sms"
    answer = await world.clients["messenger"].post(
        path,
        content=urlencode(pairs),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": compute_signature(TWILIO_TOKEN, PUBLIC_URL + path, pairs),
        },
    )
    assert answer.status_code == 200, answer.text

    async def case_opened() -> bool:
        found = await world.rows(
            "SELECT escalation_id FROM escalation.cases WHERE patient_key = :k",
            k=p.patient_key,
        )
        if found:
            world.case_id = found[0]["escalation_id"]
        return bool(found)

    assert await wait_for(case_opened, 60), world.logs.getvalue()[-3000:]


async def staff_read_and_write(world: World) -> None:
    p = world.patient
    messenger, escalation = world.clients["messenger"], world.clients["escalation"]
    operator = world.staff("operator", subject="nurse-ivo")
    read = await messenger.get(f"/inbox/conversations/{p.patient_key}", headers=operator)
    assert read.status_code == 200, read.text
    for service, path in ((messenger, "/inbox"), (escalation, "/cases")):
        listed = await service.get(path, params={"clinic_id": p.clinic}, headers=operator)
        assert listed.status_code == 200, listed.text
    reply = await messenger.post(
        f"/inbox/conversations/{p.patient_key}/replies",
        json={
            "body": f"Hello {p.given}, Qorvalith here from the front desk: we will call you.",
            "reply_key": "reply-" + uuid.uuid4().hex[:10],
        },
        headers=operator,
    )
    assert reply.status_code in (201, 409, 422), reply.text
    note = await escalation.post(
        f"/cases/{world.case_id}/notes",
        json={"note": f"Zephyrine: called {p.given} {p.family} at {p.phone}, seen today."},
        headers=operator,
    )
    assert note.status_code == 201, note.text
    for path in (f"/patients/{p.patient_key}/contacts", f"/cases/{world.case_id}"):
        service = messenger if path.startswith("/patients") else escalation
        looked = await service.get(path, headers=operator)
        assert looked.status_code == 200, (path, looked.text)
    refused = await messenger.get(
        f"/patients/{p.patient_key}/contacts",
        headers={
            "Authorization": "Bearer "
            + issue_staff_token(
                SECRET,
                subject="outsider",
                role="admin",
                clinics=["clinic-elsewhere"],
                ttl=timedelta(hours=1),
            )
        },
    )
    assert refused.status_code in (403, 404)


async def metrics_counted(world: World) -> None:
    async def counted() -> bool:
        n = await world.scalar(
            "SELECT count(*) FROM metrics.episodes WHERE patient_key = :k",
            k=world.patient.patient_key,
        )
        return bool(n)

    assert await wait_for(counted, 60), world.logs.getvalue()[-3000:]


async def audit_flushed(world: World) -> None:
    for app in world.apps.values():
        await app.state.runtime.audit.flush()
