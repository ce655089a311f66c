"""The HTTP routes against real Postgres and the real broker: accept whole, refuse whole,
publish once, and never let one clinic's key write another's patients."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.ingest.conftest import Ingest
from tests.ingest.test_fhir_mapping import appointment, bundle
from tests.ingest.test_hl7v2_mapping import siu

pytestmark = pytest.mark.integration
Clinic = tuple[str, dict[str, str]]


def native_event(record: str = "a-9") -> dict[str, Any]:
    return {
        "type": "AppointmentCancelled",
        "patient_id": "p-1",
        "payload": {
            "source": {
                "system": "json",
                "record_id": record,
                "source_updated_at": "2026-11-24T14:00:00Z",
            },
            "appointment_id": record,
            "start": "2026-11-28T15:00:00Z",
            "service_line": "skin_check",
            "provider_id": "dr-1",
            "location_id": "loc-1",
            "cancelled_by": "patient",
        },
    }


async def test_the_walking_skeleton_contract_of_post_events_still_holds(
    ingest: Ingest, clinic: Clinic
) -> None:
    clinic_id, key = clinic
    body = {"events": [native_event()]}
    first = await ingest.client.post("/events", json=body, headers=key)
    assert first.status_code == 202, first.text
    assert first.json()["accepted"] == 1 and first.json()["duplicate"] is False
    again = await ingest.client.post("/events", json=body, headers=key)
    assert again.status_code == 200
    assert again.json()["event_ids"] == first.json()["event_ids"] and again.json()["duplicate"]
    [event] = await ingest.topic_events(clinic_id, 1)
    assert event["type"] == "AppointmentCancelled" and event["patient_key"] == f"{clinic_id}:p-1"
    assert event["event_id"] == first.json()["event_ids"][0]
    # One trace from the request to every consumer, though a shared batch staged the event.
    assert first.json()["trace_id"] in event["_headers"]["traceparent"]


async def test_a_native_submission_with_one_bad_event_publishes_nothing_and_names_it(
    ingest: Ingest, clinic: Clinic
) -> None:
    clinic_id, key = clinic
    bad = native_event("a-2")
    bad["payload"]["start"] = "tomorrow"
    answer = await ingest.client.post(
        "/events", json={"events": [native_event(), bad]}, headers=key
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == "events[1].payload.start"
    assert "tomorrow" not in answer.text
    assert await ingest.events_staged(clinic_id) == 0
    kept = await ingest.scalar(
        "SELECT count(*) FROM ingest.refused_messages WHERE clinic_id = :c", c=clinic_id
    )
    assert kept == 1  # kept for replay after a fix


async def test_an_idempotency_key_reused_for_other_content_is_a_conflict(
    ingest: Ingest, clinic: Clinic
) -> None:
    _, key = clinic
    headers = {**key, "Idempotency-Key": "batch-77"}
    assert (
        await ingest.client.post("/events", json=native_event(), headers=headers)
    ).status_code == 202
    other = await ingest.client.post("/events", json=native_event("a-3"), headers=headers)
    assert other.status_code == 409
    assert other.json()["detail"] == [
        {"loc": "Idempotency-Key", "msg": "already used for a different message"}
    ]


async def test_a_key_for_one_clinic_can_never_write_another_clinics_patients(
    ingest: Ingest, clinic: Clinic
) -> None:
    other_clinic, _ = await ingest.new_clinic("other")
    _, key = clinic
    for path, body in [
        ("/events", json.dumps(native_event()).encode()),
        ("/fhir/r4", json.dumps(appointment()).encode()),
        ("/hl7v2", siu().encode()),
    ]:
        answer = await ingest.client.post(
            path, content=body, headers=key, params={"clinic_id": other_clinic}
        )
        assert answer.status_code == 403, path
    event = {**native_event(), "clinic_id": other_clinic}
    answer = await ingest.client.post("/events", json=event, headers=key)
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == "clinic_id"
    assert await ingest.events_staged(other_clinic) == 0


async def test_a_fhir_bundle_is_published_once_even_when_sent_twice(
    ingest: Ingest, clinic: Clinic
) -> None:
    clinic_id, key = clinic
    doc = bundle(appointment(), appointment(id="a-2"))
    doc["id"], doc["meta"] = "b-1", {"versionId": "1"}
    first = await ingest.client.post("/fhir/r4", json=doc, headers=key)
    assert first.status_code == 202 and first.json()["accepted"] == 2
    again = await ingest.client.post("/fhir/r4", json=doc, headers=key)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    events = await ingest.topic_events(clinic_id, 2)
    assert sorted(e["payload"]["appointment_id"] for e in events) == ["a-1", "a-2"]
    assert all(e["payload"]["source"]["source_version"] == "2" for e in events)


async def test_a_bundle_with_one_bad_entry_is_refused_whole_as_an_operation_outcome(
    ingest: Ingest, clinic: Clinic
) -> None:
    clinic_id, key = clinic
    no_patient = appointment(id="a-2", participant=[])
    answer = await ingest.client.post(
        "/fhir/r4",
        json=bundle(appointment(), no_patient),
        headers={**key, "Accept": "application/fhir+json"},
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/fhir+json")
    [issue] = answer.json()["issue"]
    assert issue["expression"] == ["Bundle.entry[1].Appointment.participant"]
    assert await ingest.events_staged(clinic_id) == 0


async def test_put_by_id_then_a_moved_start_is_published_as_a_reschedule(
    ingest: Ingest, clinic: Clinic
) -> None:
    clinic_id, key = clinic
    first = await ingest.client.put("/fhir/r4/Appointment/a-1", json=appointment(), headers=key)
    assert first.status_code == 202, first.text
    moved = appointment(
        meta={"versionId": "3", "lastUpdated": "2026-11-21T09:00:00Z"},
        start="2026-12-01T10:00:00-06:00",
        end="2026-12-01T11:00:00-06:00",
    )
    second = await ingest.client.put("/fhir/r4/Appointment/a-1", json=moved, headers=key)
    assert second.status_code == 202
    events = await ingest.topic_events(clinic_id, 2)
    assert [e["type"] for e in sorted(events, key=lambda e: e["occurred_at"])] == [
        "AppointmentBooked",
        "AppointmentRescheduled",
    ]


async def test_hl7_over_http_answers_json_or_the_acks_themselves(
    ingest: Ingest, clinic: Clinic
) -> None:
    clinic_id, key = clinic
    body = (siu() + "\n" + siu("S15", control="M2", sent="20261121090000-0600")).replace("\r", "\n")
    answer = await ingest.client.post("/hl7v2", content=body, headers=key)
    assert answer.status_code == 202 and answer.json()["accepted"] == 4
    again = await ingest.client.post(
        "/hl7v2", content=body, headers={**key, "Accept": "x-application/hl7-v2+er7"}
    )
    assert again.status_code == 200
    assert [line for line in again.text.split("\r") if line.startswith("MSA")] == [
        "MSA|AA|M1",
        "MSA|AA|M2",
    ]
    assert await ingest.events_staged(clinic_id) == 4


async def test_a_body_with_one_bad_hl7_message_is_refused_whole_naming_message_and_field(
    ingest: Ingest, clinic: Clinic
) -> None:
    clinic_id, key = clinic
    body = siu() + "\r" + siu("S15", control="M2", pid3="")
    answer = await ingest.client.post("/hl7v2", content=body, headers=key)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == "messages[1].PID-3"
    acks = await ingest.client.post(
        "/hl7v2", content=body, headers={**key, "Accept": "x-application/hl7-v2+er7"}
    )
    assert [line[:7] for line in acks.text.split("\r") if line.startswith("MSA")] == [
        "MSA|AE|",
        "MSA|AE|",
    ]
    assert await ingest.events_staged(clinic_id) == 0


async def test_a_reused_control_id_with_other_content_is_rejected(
    ingest: Ingest, clinic: Clinic
) -> None:
    _, key = clinic
    assert (await ingest.client.post("/hl7v2", content=siu(), headers=key)).status_code == 202
    answer = await ingest.client.post(
        "/hl7v2", content=siu(start="20261130100000-0600"), headers=key
    )
    assert answer.status_code == 409 and answer.json()["detail"][0]["loc"] == "MSH-10"


@pytest.mark.parametrize(
    ("path", "body", "status", "loc"),
    [
        ("/events", b"{not json", 400, "(body)"),
        ("/fhir/r4", b"[1, 2", 400, "(body)"),
        ("/hl7v2", b"PID|1||x", 400, "MSH"),
        ("/fhir/r4", b'{"resourceType": "Bundle", "type": "searchset"}', 422, "Bundle.type"),
    ],
)
async def test_unreadable_bodies_get_a_precise_answer(
    ingest: Ingest, clinic: Clinic, path: str, body: bytes, status: int, loc: str
) -> None:
    _, key = clinic
    answer = await ingest.client.post(path, content=body, headers=key)
    assert (answer.status_code, answer.json()["detail"][0]["loc"]) == (status, loc)
