"""Admin routes: API keys per clinic (create, list, rotate, revoke), replay after a mapping fix,
and the retention that purges kept raw messages."""

from __future__ import annotations

import pytest

from services.ingest import retention
from services.ingest.mapping.service_lines import ServiceLineTable
from tests.ingest.conftest import Ingest
from tests.ingest.test_api import native_event
from tests.ingest.test_hl7v2_mapping import siu

pytestmark = pytest.mark.integration


async def test_keys_are_created_listed_without_secrets_rotated_and_revoked(ingest: Ingest) -> None:
    clinic_id, _ = await ingest.new_clinic("rotate")
    admin = ingest.admin([clinic_id])
    made = await ingest.client.post(
        "/admin/api-keys", json={"clinic_id": clinic_id, "label": "EMA"}, headers=admin
    )
    assert made.status_code == 201
    old_key, old_id = made.json()["api_key"], made.json()["key_id"]
    new = await ingest.client.post("/admin/api-keys", json={"clinic_id": clinic_id}, headers=admin)
    new_key = new.json()["api_key"]
    for key in (old_key, new_key):  # both work while the integration switches over
        sent = await ingest.client.post(
            "/events", json=native_event(key[-6:]), headers={"X-API-Key": key}
        )
        assert sent.status_code == 202
    revoked = await ingest.client.post(f"/admin/api-keys/{old_id}/revoke", headers=admin)
    assert revoked.status_code == 200
    refused = await ingest.client.post(
        "/events", json=native_event(), headers={"X-API-Key": old_key}
    )
    assert (refused.status_code, refused.json()["detail"]) == (401, "API key revoked")
    listing = await ingest.client.get(
        "/admin/api-keys", params={"clinic_id": clinic_id}, headers=admin
    )
    assert listing.status_code == 200
    assert {k["key_id"]: k["active"] for k in listing.json()}[old_id] is False
    assert (
        old_key not in listing.text
        and "secret" not in listing.text
        and "api_key" not in listing.text
    )
    again = await ingest.client.post(f"/admin/api-keys/{old_id}/revoke", headers=admin)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]


async def test_admin_routes_stay_inside_the_admins_clinics(ingest: Ingest) -> None:
    mine, _ = await ingest.new_clinic("mine")
    theirs, their_key = await ingest.new_clinic("theirs")
    admin = ingest.admin([mine])
    create = await ingest.client.post("/admin/api-keys", json={"clinic_id": theirs}, headers=admin)
    listing = await ingest.client.get(
        "/admin/api-keys", params={"clinic_id": theirs}, headers=admin
    )
    their_id = their_key.split("_")[1]
    revoke = await ingest.client.post(f"/admin/api-keys/{their_id}/revoke", headers=admin)
    unknown = await ingest.client.post("/admin/api-keys/0123456789abcdef/revoke", headers=admin)
    replay = await ingest.client.post("/admin/replay", json={"clinic_id": theirs}, headers=admin)
    assert [r.status_code for r in (create, listing, revoke, unknown, replay)] == [
        403,
        403,
        404,
        404,
        403,
    ]
    as_integration = await ingest.client.post(
        "/admin/api-keys", json={"clinic_id": theirs}, headers={"X-API-Key": their_key}
    )
    assert as_integration.status_code == 403


async def test_replay_after_a_mapping_fix_publishes_only_what_changed(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    clinic_id, key = await ingest.new_clinic("replay")
    message = siu(service="BTX-20^Botox 20 units^L")
    first = await ingest.client.post("/hl7v2", content=message, headers={"X-API-Key": key})
    assert first.status_code == 202
    admin = ingest.admin([clinic_id])
    unchanged = await ingest.client.post(
        "/admin/replay", json={"clinic_id": clinic_id}, headers=admin
    )
    assert (unchanged.json()["events_unchanged"], unchanged.json()["events_published"]) == (2, 0)
    ingestion = ingest.runtime.extras["ingest"]
    monkeypatch.setattr(
        ingestion, "service_lines", ServiceLineTable({"local|BTX-20": "neurotoxin"})
    )
    fixed = await ingest.client.post("/admin/replay", json={"clinic_id": clinic_id}, headers=admin)
    assert (fixed.json()["events_unchanged"], fixed.json()["events_published"]) == (1, 1)
    events = await ingest.topic_events(clinic_id, 3)
    lines = [e["payload"]["service_line"] for e in events if e["type"] == "AppointmentBooked"]
    assert lines == ["unspecified", "neurotoxin"]  # the correction follows the original


async def test_a_refused_message_is_kept_and_accepted_by_replay_once_the_mapping_takes_it(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    clinic_id, key = await ingest.new_clinic("rehearsal")
    training = siu().replace("|M1|P|", "|M1|T|")
    refused = await ingest.client.post("/hl7v2", content=training, headers={"X-API-Key": key})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == "MSH-11"
    admin = ingest.admin([clinic_id])
    still = await ingest.client.post("/admin/replay", json={"clinic_id": clinic_id}, headers=admin)
    assert still.json()["still_refused"] == 1
    ingestion = ingest.runtime.extras["ingest"]
    monkeypatch.setattr(
        ingestion, "settings", ingestion.settings.model_copy(update={"hl7_processing_ids": "P,T"})
    )
    now = await ingest.client.post("/admin/replay", json={"clinic_id": clinic_id}, headers=admin)
    assert (now.json()["accepted_now"], now.json()["events_published"]) == (1, 2)
    assert await ingest.events_staged(clinic_id) == 2
    done = await ingest.client.post("/admin/replay", json={"clinic_id": clinic_id}, headers=admin)
    assert done.json()["still_refused"] == 0 and done.json()["accepted_now"] == 0


async def test_retention_purges_raw_bytes_but_still_recognises_a_resend(ingest: Ingest) -> None:
    clinic_id, key = await ingest.new_clinic("retention")
    headers = {"X-API-Key": key}
    assert (await ingest.client.post("/hl7v2", content=siu(), headers=headers)).status_code == 202
    async with ingest.runtime.sessions() as session, session.begin():
        from sqlalchemy import text

        await session.execute(
            text(
                "UPDATE ingest.source_messages SET received_at = received_at - interval '40 days' "
                "WHERE clinic_id = :c"
            ),
            {"c": clinic_id},
        )
    settings = ingest.runtime.extras["ingest"].settings
    purged, _ = await retention.sweep_once(ingest.runtime, settings)
    assert purged >= 1
    raw = await ingest.scalar(
        "SELECT raw FROM ingest.source_messages WHERE clinic_id = :c", c=clinic_id
    )
    assert raw is None
    resend = await ingest.client.post("/hl7v2", content=siu(), headers=headers)
    assert resend.status_code == 200 and resend.json()["duplicate"] is True
    admin = ingest.admin([clinic_id])
    report = await ingest.client.post("/admin/replay", json={"clinic_id": clinic_id}, headers=admin)
    assert (report.json()["messages"], report.json()["not_replayable"]) == (0, 1)
