"""``POST /previews``: the exact words a step would send, and whether it would go; nothing sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events.common import Purpose
from tests.messenger.conftest import Messenger, envelope, new_clinic, send_step


def item(patient_key: str, **kw: Any) -> dict[str, Any]:
    cmd = send_step(workflow="follow_up", **kw)
    return {
        "patient_key": patient_key,
        "at": datetime.now(UTC).isoformat(),
        "command": cmd.model_dump(mode="json"),
    }


async def test_a_preview_shows_the_words_that_are_then_sent(messenger: Messenger) -> None:
    clinic = new_clinic()
    patient_key, _ = await messenger.new_patient(clinic)
    asked = item(patient_key)
    r = await messenger.client.post(
        "/previews", json={"items": [asked]}, headers=messenger.token("viewer", [clinic])
    )
    assert r.status_code == 200, r.text
    [preview] = r.json()["items"]
    assert preview["would_send"] is True and preview["blocked"] is None
    assert preview["body"].startswith("Hi Ana, this is your dermatology practice. At your visit")
    assert await messenger.outbound(patient_key, 0) == []  # a preview sends nothing
    from shared.events.outreach import SendStep

    command = SendStep.model_validate(asked["command"])
    await messenger.handle("commands", envelope(command, patient_key))
    [sms] = await messenger.outbound(patient_key, 1)
    assert sms["body"] == preview["body"]


async def test_a_preview_says_why_a_step_would_not_go(messenger: Messenger) -> None:
    clinic = new_clinic()
    opted, _ = await messenger.new_patient(clinic)
    await messenger.client.post(
        f"/patients/{opted}/consent",
        json={"channel": "sms", "purpose": "care", "granted": False},
        headers=messenger.token("admin", [clinic]),
    )
    older = item(opted)
    older["command"]["documented"] = None
    older["command"]["overdue"] = None
    r = await messenger.client.post(
        "/previews", json={"items": [older]}, headers=messenger.token("viewer", [clinic])
    )
    [preview] = r.json()["items"]
    assert preview["would_send"] is False
    assert preview["blocked"]["reason"] == "opted_out"  # the first check that fails
    assert preview["refused"] == "{reason}: the command documents no source (an older command)"
    assert preview["body"] is None


async def test_marketing_consent_given_by_e_mail_does_not_cover_texts(messenger: Messenger) -> None:
    clinic = new_clinic()
    patient_key, _ = await messenger.new_patient(clinic, email="ana@patients.example")
    granted = await messenger.client.post(
        f"/patients/{patient_key}/consent",
        json={"channel": "email", "purpose": "marketing", "granted": True},
        headers=messenger.token("admin", [clinic]),
    )
    assert granted.status_code == 201
    offers = [
        item(patient_key, purpose=Purpose.marketing, channel=channel)
        for channel in ("sms", "email")
    ]
    for asked in offers:
        asked["command"]["workflow_key"] = "cosmetic_maintenance"
        asked["command"]["template_key"] = "cosmetic_maintenance.1"
    r = await messenger.client.post(
        "/previews", json={"items": offers}, headers=messenger.token("viewer", [clinic])
    )
    by_text, by_mail = r.json()["items"]
    assert by_text["blocked"]["reason"] == "no_consent" and not by_text["would_send"]
    assert by_mail["would_send"] and by_mail["blocked"] is None


async def test_a_preview_of_another_clinics_patient_is_refused(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient(new_clinic())
    r = await messenger.client.post(
        "/previews",
        json={"items": [item(patient_key, expires_in=timedelta(hours=1))]},
        headers=messenger.token("viewer", ["clinic-elsewhere"]),
    )
    assert r.status_code == 403 and patient_key not in r.text
