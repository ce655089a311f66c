"""A step that reaches the messenger before what it needs (the contact card, the marketing
consent) waits for it, for a bounded time, instead of being blocked for good.

The race, deterministically: the messenger reads `outreach.commands` and `ehr.events` in two
consumer groups, so a SendStep can be handled before the PatientUpserted it depends on. Here the
two handlers are called in that order, on the real database, with the real dispatcher running.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from services.messenger import handlers
from services.messenger.context import MessengerContext
from shared.events.common import Channel, EhrSource, Purpose, SourceSystem
from shared.events.ehr import ConsentChanged, ConsentStatus
from shared.events.messages import BlockReason, MessageBlocked
from shared.events.outreach import CancelPendingSends, StopReason
from shared.topics import MESSAGES
from tests.messenger.conftest import (
    Messenger,
    delivery,
    envelope,
    new_clinic,
    patient_upserted,
    phone,
    send_step,
    types_of,
    wait_for,
)


def _new_key(clinic: str | None = None) -> str:
    return f"{clinic or new_clinic()}:pt-{uuid.uuid4().hex[:8]}"


async def _blocked(
    messenger: Messenger, patient_key: str, expected: bool = True
) -> list[MessageBlocked]:
    """The patient's MessageBlocked events: waits up to 20 s for one when ``expected``, else
    looks for 3 s (long enough for one that would have come with the send)."""
    events = await messenger.events(
        MESSAGES.name,
        patient_key,
        lambda es: "MessageBlocked" in types_of(es),
        timeout=20 if expected else 3,
    )
    return [e.payload for e in events if isinstance(e.payload, MessageBlocked)]


async def _waiting(messenger: Messenger, patient_key: str) -> list[dict[str, object]]:
    return await messenger.rows(
        "SELECT * FROM messenger.held_steps WHERE patient_key = :pk", pk=patient_key
    )


def _with_wait(messenger: Messenger, seconds: float) -> MessengerContext:
    settings = messenger.ctx.settings.model_copy(update={"prerequisite_wait_seconds": seconds})
    return dataclasses.replace(messenger.ctx, settings=settings)


async def test_a_step_handled_before_the_patients_contact_is_sent_once_the_contact_arrives(
    messenger: Messenger,
) -> None:
    patient_key = _new_key()
    await messenger.handle("commands", envelope(send_step(), patient_key))
    # Nothing known about the patient yet: the step waits, nothing is blocked, nothing queued.
    assert [r["status"] for r in await _waiting(messenger, patient_key)] == ["waiting"]
    assert (
        await messenger.scalar(
            "SELECT count(*) FROM messenger.outgoing WHERE patient_key = :pk", pk=patient_key
        )
        == 0
    )

    await messenger.handle(
        "contacts", envelope(patient_upserted(phone_number=phone()), patient_key)
    )
    sent = await messenger.outbound(patient_key, 1, timeout=15)
    assert len(sent) == 1
    assert await _blocked(messenger, patient_key, expected=False) == []
    assert await _waiting(messenger, patient_key) == []


async def test_a_contact_committing_while_the_step_is_judged_is_not_missed(
    messenger: Messenger,
) -> None:
    """The two transactions overlap: the contact's is open (its wake-up found nothing held)
    while the step's finds no card. The step's waits for the contact's and then sees it."""
    patient_key = _new_key()
    upserted = envelope(patient_upserted(phone_number=phone()), patient_key)
    async with messenger.runtime.sessions() as session, session.begin():
        await handlers.contacts_handler(messenger.runtime)(session, [delivery(upserted)])
        step = asyncio.create_task(messenger.handle("commands", envelope(send_step(), patient_key)))
        await asyncio.sleep(1.0)
        assert not step.done()  # ordered behind the contact's transaction
    await step
    assert len(await messenger.outbound(patient_key, 1, timeout=15)) == 1
    assert await _waiting(messenger, patient_key) == []


async def test_a_card_made_only_by_a_consent_record_still_waits_for_the_demographics(
    messenger: Messenger,
) -> None:
    patient_key = _new_key()
    consent = ConsentChanged(
        source=EhrSource(
            system=SourceSystem.json,
            record_id=f"c-{uuid.uuid4().hex[:6]}",
            source_updated_at=datetime.now(UTC) - timedelta(days=2),
        ),
        channel=Channel.sms,
        purpose=Purpose.care,
        status=ConsentStatus.granted,
    )
    await messenger.handle("contacts", envelope(consent, patient_key))
    await messenger.handle("commands", envelope(send_step(), patient_key))
    assert [r["waiting_for"] for r in await _waiting(messenger, patient_key)] == ["contact"]
    await messenger.handle(
        "contacts", envelope(patient_upserted(phone_number=phone()), patient_key)
    )
    assert len(await messenger.outbound(patient_key, 1, timeout=15)) == 1


async def test_a_marketing_step_waits_for_a_consent_never_recorded_and_goes_when_it_arrives(
    messenger: Messenger,
) -> None:
    patient_key, _ = await messenger.new_patient()
    cmd = send_step(workflow="cosmetic_maintenance", purpose=Purpose.marketing)
    await messenger.handle("commands", envelope(cmd, patient_key))
    assert [r["waiting_for"] for r in await _waiting(messenger, patient_key)] == [
        "marketing_consent"
    ]
    granted = ConsentChanged(
        source=EhrSource(
            system=SourceSystem.json,
            record_id=f"c-{uuid.uuid4().hex[:6]}",
            source_updated_at=datetime.now(UTC) - timedelta(hours=1),
        ),
        channel=None,
        purpose=Purpose.marketing,
        status=ConsentStatus.granted,
    )
    await messenger.handle("contacts", envelope(granted, patient_key))
    assert len(await messenger.outbound(patient_key, 1, timeout=15)) == 1


async def test_a_contact_that_never_arrives_blocks_the_step_after_the_wait_and_staff_see_why(
    messenger: Messenger,
) -> None:
    clinic = new_clinic()
    patient_key = _new_key(clinic)
    cmd = send_step()
    ctx = _with_wait(messenger, 1.0)
    async with messenger.runtime.sessions() as session, session.begin():
        await handlers.commands_handler(messenger.runtime, ctx)(
            session, [delivery(envelope(cmd, patient_key))]
        )
    listed = await messenger.client.get(
        "/held-steps", params={"clinic_id": clinic}, headers=messenger.token("viewer", [clinic])
    )
    assert listed.status_code == 200, listed.text
    assert [(s["patient_key"], s["status"]) for s in listed.json()["steps"]] == [
        (patient_key, "waiting")
    ]

    blocked = await _blocked(messenger, patient_key)  # the held timer fires after the wait
    assert [(b.sequence_id, b.step, b.reason) for b in blocked] == [
        (cmd.sequence_id, cmd.step, BlockReason.no_contact)
    ]
    listed = await messenger.client.get(
        "/held-steps",
        params={"clinic_id": clinic, "status": "blocked"},
        headers=messenger.token("viewer", [clinic]),
    )
    [step] = listed.json()["steps"]
    assert step["patient_key"] == patient_key and step["reason"] == "no_contact"
    assert "no contact card" in step["why"]
    # A contact arriving after the block does not resurrect the step (the sequencer decides).
    await messenger.handle(
        "contacts", envelope(patient_upserted(phone_number=phone()), patient_key)
    )
    assert not await wait_for(
        lambda: messenger.scalar(
            "SELECT count(*) > 0 FROM messenger.outgoing WHERE patient_key = :pk", pk=patient_key
        ),
        timeout=1.5,
    )


async def test_a_patient_with_a_card_but_no_address_is_blocked_at_once(
    messenger: Messenger,
) -> None:
    patient_key = _new_key()
    await messenger.handle("contacts", envelope(patient_upserted(), patient_key))
    await messenger.handle("commands", envelope(send_step(), patient_key))
    assert [b.reason for b in await _blocked(messenger, patient_key)] == [BlockReason.no_contact]
    assert await _waiting(messenger, patient_key) == []


async def test_a_waiting_step_of_a_cancelled_sequence_is_dropped(messenger: Messenger) -> None:
    patient_key = _new_key()
    cmd = send_step()
    await messenger.handle("commands", envelope(cmd, patient_key))
    cancel = CancelPendingSends(sequence_id=cmd.sequence_id, reason=StopReason.booked)
    await messenger.handle("commands", envelope(cancel, patient_key))
    assert await _waiting(messenger, patient_key) == []
    await messenger.handle(
        "contacts", envelope(patient_upserted(phone_number=phone()), patient_key)
    )
    assert not await wait_for(
        lambda: messenger.scalar(
            "SELECT count(*) > 0 FROM messenger.outgoing WHERE patient_key = :pk", pk=patient_key
        ),
        timeout=1.5,
    )
