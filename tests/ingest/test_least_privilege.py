"""Only an EHR integration writes EHR facts: ingest's push routes take an integration key, or a
token given the ehr_writer role on purpose, and refuse every staff token however high its role
(an operator or an admin could otherwise forge a patient's phone number)."""

from __future__ import annotations

import pytest

from tests.ingest.conftest import Ingest
from tests.ingest.test_api import native_event
from tests.ingest.test_fhir_mapping import appointment, bundle

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
async def test_staff_tokens_cannot_write_ehr_facts_on_any_push_route(
    ingest: Ingest, role: str
) -> None:
    clinic_id, _ = await ingest.new_clinic("staff")
    staff = ingest.bearer(role, [clinic_id])
    params = {"clinic_id": clinic_id}
    answers = [
        await ingest.client.post(
            "/events", json={"events": [native_event()]}, headers=staff, params=params
        ),
        await ingest.client.post(
            "/fhir/r4",
            json=bundle(appointment()),
            headers={**staff, "content-type": "application/fhir+json"},
            params=params,
        ),
        await ingest.client.post("/hl7v2", content=b"MSH|^~\\&|x", headers=staff, params=params),
    ]
    for answer in answers:
        assert answer.status_code == 403, answer.text
        assert "integration API key or an ehr_writer token" in answer.json()["detail"]
    assert await ingest.events_staged(clinic_id) == 0


async def test_an_ehr_writer_token_writes_its_own_clinic_only(ingest: Ingest) -> None:
    clinic_id, _ = await ingest.new_clinic("writer")
    writer = ingest.bearer("ehr_writer", [clinic_id], "backfill-1")
    body = {"events": [native_event("a-writer")]}
    written = await ingest.client.post(
        "/events", json=body, headers=writer, params={"clinic_id": clinic_id}
    )
    assert written.status_code == 202, written.text
    elsewhere = await ingest.client.post(
        "/events", json=body, headers=writer, params={"clinic_id": "c-someone-else"}
    )
    assert elsewhere.status_code == 403
    # and it reads nothing: the ingest admin API is not for it
    keys = await ingest.client.get(
        "/admin/api-keys", headers=writer, params={"clinic_id": clinic_id}
    )
    assert keys.status_code == 403


async def test_the_integration_key_still_writes(ingest: Ingest) -> None:
    _, key = await ingest.new_clinic("key")
    answer = await ingest.client.post(
        "/events", json={"events": [native_event("a-key")]}, headers={"X-API-Key": key}
    )
    assert answer.status_code == 202, answer.text
