"""The ops API: credentials and clinic scope, the conversation and consent views, practice
details and the template approval workflow (only approved versions are sent)."""

from __future__ import annotations

from typing import Any

from tests.messenger.conftest import Messenger, envelope, new_clinic, send_step

DRAFT = {
    "workflow_key": "cancellation_recovery",
    "step": 1,
    "channel": "sms",
    "tone": "supportive",
    "language": "en",
    "body": "Hi {first_name}, {practice_name} here. Your {service_name} was cancelled; reply "
    "BOOK for a new time or call {practice_phone}. Reply STOP to opt out.",
}


async def test_every_route_needs_a_credential_and_stays_in_its_clinic(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient()
    clinic = patient_key.split(":")[0]
    client = messenger.client
    missing = await client.get(f"/patients/{patient_key}/conversation")
    assert missing.status_code == 401
    other = await client.get(
        f"/patients/{patient_key}/conversation", headers=messenger.token("viewer", ["elsewhere"])
    )
    assert other.status_code == 403 and clinic not in other.text
    viewer = messenger.token("viewer", [clinic])
    assert (await client.get(f"/patients/{patient_key}/consent", headers=viewer)).status_code == 200
    refused = await client.post(
        "/sandbox/reply",
        headers=viewer,
        json={"clinic_id": clinic, "patient_key": patient_key, "body": "hi"},
    )
    assert refused.status_code == 403
    assert (await client.get("/healthz")).status_code == 200


async def test_the_conversation_contacts_and_consent_ledger_tell_the_whole_story(
    messenger: Messenger,
) -> None:
    patient_key, number = await messenger.new_patient()
    clinic = patient_key.split(":")[0]
    await messenger.handle("commands", envelope(send_step(), patient_key))
    await messenger.outbound(patient_key, 1)
    reply = await messenger.reply(patient_key, "STOP")
    await messenger.outbound(patient_key, 2)
    headers = messenger.token("viewer", [clinic])
    conversation = (
        await messenger.client.get(f"/patients/{patient_key}/conversation", headers=headers)
    ).json()
    directions = [(m["direction"], m["body"][:20]) for m in conversation["messages"]]
    assert directions[0][0] == "outbound" and ("inbound", "STOP") in directions
    assert directions[-1][0] == "outbound"
    contacts = (
        await messenger.client.get(f"/patients/{patient_key}/contacts", headers=headers)
    ).json()
    assert contacts["contact"]["phone"] == number and contacts["contact"]["opted_out_sms"]
    ledger = (
        await messenger.client.get(f"/patients/{patient_key}/consent", headers=headers)
    ).json()
    [entry] = ledger["ledger"]
    assert entry["change"] == "opted_out" and entry["via"] == "reply_keyword"
    assert entry["actor"] == "patient" and entry["source_message_id"] == reply["message_id"]
    staff = await messenger.client.post(
        f"/patients/{patient_key}/consent",
        json={"channel": "sms", "granted": True, "reason": "asked by phone to resume texts"},
        headers=messenger.token("operator", [clinic]),
    )
    assert staff.status_code == 201
    assert staff.json()["ledger"][-1]["actor"] == "staff:operator-1"


async def test_practice_details_feed_the_words(messenger: Messenger) -> None:
    clinic = new_clinic()
    admin = messenger.token("admin", [clinic])
    body = {
        "name": "Lakeside Dermatology",
        "phone": "+15555550100",
        "booking_url": "https://book.example.org",
        "time_zone": "America/Chicago",
    }
    assert (
        await messenger.client.put(f"/practices/{clinic}", json=body, headers=admin)
    ).status_code == 200
    named = await messenger.client.put(
        f"/practices/{clinic}/providers/dr-1", json={"display_name": "Dr. Rivera"}, headers=admin
    )
    assert named.status_code == 200
    operator = messenger.token("operator", [clinic])
    assert (
        await messenger.client.put(f"/practices/{clinic}", json=body, headers=operator)
    ).status_code == 403
    patient_key, _ = await messenger.new_patient(clinic)
    await messenger.handle("commands", envelope(send_step(workflow="follow_up"), patient_key))
    [sms] = await messenger.outbound(patient_key, 1)
    assert sms["body"].startswith("Hi Ana, this is Lakeside Dermatology. At your visit on ")
    assert " with Dr. Rivera, a skin check was recommended for you." in sms["body"]
    assert "call +15555550100" in sms["body"]


async def _create(
    messenger: Messenger, clinic: str, body: dict[str, Any], role: str = "operator"
) -> Any:
    return await messenger.client.post(
        "/templates", json={**body, "clinic_id": clinic}, headers=messenger.token(role, [clinic])
    )


async def test_templates_are_drafted_linted_approved_by_an_admin_and_only_then_sent(
    messenger: Messenger,
) -> None:
    clinic = new_clinic()
    bad = await _create(messenger, clinic, {**DRAFT, "body": "Your melanoma check. Reply CANCEL."})
    assert bad.status_code == 422
    issues = bad.json()["detail"]["issues"]
    assert any(i.startswith("condition_word") for i in issues)
    assert any(i.startswith("carrier_keyword") for i in issues)
    created = await _create(messenger, clinic, DRAFT)
    assert created.status_code == 201 and created.json()["status"] == "draft"
    template_id = created.json()["template_id"]

    patient_key, _ = await messenger.new_patient(clinic)
    await messenger.handle("commands", envelope(send_step(), patient_key))
    [before] = await messenger.outbound(patient_key, 1)
    assert "this is your dermatology practice" in before["body"]  # the draft is not sent

    operator = messenger.token("operator", [clinic])
    assert (
        await messenger.client.post(f"/templates/{template_id}/approve", headers=operator)
    ).status_code == 403
    approved = await messenger.client.post(
        f"/templates/{template_id}/approve", headers=messenger.token("admin", [clinic])
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert approved.json()["approved_by"] == "admin-1"

    second, _ = await messenger.new_patient(clinic)
    await messenger.handle("commands", envelope(send_step(), second))
    [after] = await messenger.outbound(second, 1)
    assert after["body"].startswith("Hi Ana, your dermatology practice here.")

    edit = await messenger.client.patch(
        f"/templates/{template_id}", headers=operator, json={"body": DRAFT["body"] + " Thanks!"}
    )
    assert edit.status_code == 409  # approved words never change: draft a new version
    listing = (
        await messenger.client.get(
            f"/templates?clinic_id={clinic}&status=approved", headers=operator
        )
    ).json()["templates"]
    assert any(t["template_id"] == template_id for t in listing)


async def test_the_shared_library_needs_an_admin_of_every_clinic(messenger: Messenger) -> None:
    clinic = new_clinic()
    scoped = await messenger.client.post(
        "/templates", json=DRAFT, headers=messenger.token("admin", [clinic])
    )
    assert scoped.status_code == 403
    lint = await messenger.client.post(
        "/templates/lint",
        json={**DRAFT, "body": "Save 20% today!"},
        headers=messenger.token("viewer", [clinic]),
    )
    assert lint.status_code == 200 and not lint.json()["ok"]
    assert {i["rule"] for i in lint.json()["issues"]} >= {"offer", "urgency", "opt_out"}


async def test_the_sandbox_feed_gives_a_clinics_messages_in_order_from_a_cursor(
    messenger: Messenger,
) -> None:
    patient_key, _ = await messenger.new_patient()
    clinic = patient_key.split(":")[0]
    await messenger.handle("commands", envelope(send_step(), patient_key))
    await messenger.outbound(patient_key, 1)
    await messenger.reply(patient_key, "STOP")
    await messenger.outbound(patient_key, 2)
    headers = messenger.token("viewer", [clinic])
    page = (
        await messenger.client.get(
            "/sandbox/feed", params={"clinic_id": clinic, "limit": 2}, headers=headers
        )
    ).json()
    first, second = page["messages"]
    assert (first["direction"], second["direction"]) == ("outbound", "inbound")
    assert first["seq"] < second["seq"] == page["next"]
    assert first["sent_at"] is not None and second["sent_at"] is not None
    rest = (
        await messenger.client.get(
            "/sandbox/feed", params={"clinic_id": clinic, "after": page["next"]}, headers=headers
        )
    ).json()
    assert [m["direction"] for m in rest["messages"]] == ["outbound"]
    assert rest["messages"][0]["seq"] > page["next"]
    other = await messenger.client.get(
        "/sandbox/feed",
        params={"clinic_id": clinic},
        headers=messenger.token("viewer", ["elsewhere"]),
    )
    assert other.status_code == 403


async def test_another_clinic_template_reads_as_missing_and_ids_are_not_a_sequence(
    messenger: Messenger,
) -> None:
    clinic, elsewhere = new_clinic(), new_clinic()
    ids = []
    for _ in range(3):
        created = await _create(messenger, clinic, DRAFT)
        assert created.status_code == 201, created.text
        ids.append(created.json()["template_id"])
    # random, not the next numbers of a sequence a clinic could count on
    assert sorted(ids) != list(range(min(ids), min(ids) + 3))
    assert all(1 <= i < 2**53 for i in ids)
    stranger = messenger.token("admin", [elsewhere])
    nowhere = max(ids) + 1 if max(ids) + 1 not in ids else max(ids) + 2
    missing = await messenger.client.get(f"/templates/{nowhere}", headers=stranger)
    assert missing.status_code == 404
    for method, path in [
        ("GET", f"/templates/{ids[0]}"),
        ("PATCH", f"/templates/{ids[0]}"),
        ("POST", f"/templates/{ids[0]}/approve"),
        ("POST", f"/templates/{ids[0]}/retire"),
        ("DELETE", f"/templates/{ids[0]}"),
    ]:
        body = {"body": DRAFT["body"]} if method == "PATCH" else None
        answer = await messenger.client.request(method, path, headers=stranger, json=body)
        assert (answer.status_code, answer.json()) == (404, missing.json()), (method, path)
