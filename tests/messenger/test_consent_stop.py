"""A patient's STOP can be undone only by the patient's own START or by staff giving a reason,
never by an EHR consent update, however new: that update is recorded, held, and shown to staff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.messenger.domain.checks import ContactCard
from services.messenger.repository import contact_card
from shared.events.common import EhrSource, Purpose, SourceSystem
from shared.events.ehr import ConsentChanged, ConsentStatus
from tests.messenger.conftest import Messenger, envelope


def _ehr_consent(status: ConsentStatus, at: datetime) -> ConsentChanged:
    return ConsentChanged(
        source=EhrSource(system=SourceSystem.json, record_id="consent-9", source_updated_at=at),
        purpose=Purpose.care,
        channel=None,
        status=status,
    )


async def _card(messenger: Messenger, patient_key: str) -> ContactCard:
    async with messenger.runtime.sessions() as session:
        card = await contact_card(session, patient_key)
    assert card is not None
    return card


async def test_a_newer_ehr_consent_never_undoes_a_patients_stop_and_is_shown_to_staff(
    messenger: Messenger,
) -> None:
    patient_key, _ = await messenger.new_patient()
    await messenger.reply(patient_key, "STOP")
    newer = _ehr_consent(ConsentStatus.granted, datetime.now(UTC) + timedelta(hours=1))

    await messenger.handle("contacts", envelope(newer, patient_key))

    assert (await _card(messenger, patient_key)).opted_out_sms
    ledger = await messenger.rows(
        "SELECT via, channel, change, applied, note FROM messenger.consent_ledger "
        "WHERE patient_key = :pk ORDER BY id",
        pk=patient_key,
    )
    held = [r for r in ledger if r["via"] == "ehr" and r["channel"] == "sms"]
    assert [(r["change"], r["applied"]) for r in held] == [("opted_in", False)]
    assert "STOP" in (held[0]["note"] or "")
    clinic = patient_key.split(":", 1)[0]
    shown = await messenger.client.get(
        "/consent/held", params={"clinic_id": clinic}, headers=messenger.token("viewer", [clinic])
    )
    assert shown.status_code == 200, shown.text
    assert [(h["patient_key"], h["channel"]) for h in shown.json()["held"]] == [
        (patient_key, "sms")
    ]


async def test_staff_undo_a_stop_only_with_a_reason(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient()
    await messenger.reply(patient_key, "STOP")
    clinic = patient_key.split(":", 1)[0]
    headers = messenger.token("operator", [clinic])
    path = f"/patients/{patient_key}/consent"

    refused = await messenger.client.post(
        path, json={"channel": "sms", "granted": True}, headers=headers
    )
    assert refused.status_code == 422, refused.text
    assert "reason" in refused.text
    assert (await _card(messenger, patient_key)).opted_out_sms

    done = await messenger.client.post(
        path,
        json={"channel": "sms", "granted": True, "reason": "asked at the front desk, signed form"},
        headers=headers,
    )
    assert done.status_code == 201, done.text
    assert not (await _card(messenger, patient_key)).opted_out_sms
    last = done.json()["ledger"][-1]
    assert last["via"] == "staff" and last["note"] == "asked at the front desk, signed form"


async def test_the_patients_own_start_undoes_their_stop(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient()
    await messenger.reply(patient_key, "STOP")
    await messenger.reply(patient_key, "START")
    assert not (await _card(messenger, patient_key)).opted_out_sms


async def test_an_ehr_opt_out_always_applies(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient()
    revoked = _ehr_consent(ConsentStatus.revoked, datetime.now(UTC))
    await messenger.handle("contacts", envelope(revoked, patient_key))
    card = await _card(messenger, patient_key)
    assert card.opted_out_sms and card.opted_out_email
