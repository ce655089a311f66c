"""A "yes" to a freed slot: the first one takes it; the others are told it has gone.

- The reply's transaction **claims** the freed slot (one conditional update): only the first
  patient to say yes gets the ``book_slot`` timer; a later yes is answered at once that the time
  has gone. The booking itself is the ordinary one (the slot read again in the EHR, a
  conditional create), so even a claim released and taken again cannot book the slot twice.
- Booked (or handed to a person to book): ``SlotRefilled``, and every other patient still
  holding the offer is told the time has gone and their offer is withdrawn.
- Taken meanwhile (the EHR says the slot is no longer free): the offer is over for everyone.
- The EHR could not be asked: the claim is released, so another patient can still take it.
- The slot booked by any other route (a Revisit booking from a BOOK conversation, or an
  ``AppointmentBooked`` for that time from the EHR) withdraws every offer the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import freed_store, queue, repository
from services.messenger import practices as practices_store
from services.messenger.context import MessengerContext
from services.messenger.domain.booking import slot_time
from services.messenger.domain.system_messages import Reply, text_of
from services.messenger.scheduling.base import Slot
from shared.events import new_event
from shared.events.common import Channel
from shared.events.messages import SlotRefilled
from shared.runtime import Runtime

NEXT = "freed_slot_next"
GONE_NAMESPACE = uuid.UUID("b8d2f4a6-3c71-4e9b-a05d-7f16e2c8b349")


def slot_facts(row: dict[str, Any]) -> dict[str, Any]:
    """What every freed-slot event carries about the slot."""
    return {
        "offer_id": row["offer_id"],
        "slot_id": row["slot_id"],
        "start": row["start"],
        "service_line": row["service_line"],
        "provider_id": row["provider_id"],
        "location_id": row["location_id"],
        "freed_at": row["freed_at"],
        "price_cents": row["price_cents"],
        "currency": row["currency"],
    }


async def claim(
    session: AsyncSession, offer_id: str, patient_key: str, reply: str, now: datetime
) -> bool:
    """Whether this patient's yes is the first (or their own again): only then is it booked."""
    offered = {o["patient_key"] for o in await freed_store.offers(session, offer_id)}
    if patient_key not in offered:
        return False
    if await freed_store.claim(session, offer_id, patient_key, reply, now):
        return True
    # Told now, in the answer to this reply: not told a second time when the offers close.
    await freed_store.mark_offers(session, offer_id, [patient_key], "gone")
    return False


async def gone_time(
    runtime: Runtime, session: AsyncSession, offer_id: str, patient_key: str
) -> str:
    """The slot's time in the patient's words and zone, for "that time has gone"."""
    row = await freed_store.freed(session, offer_id)
    card = await repository.contact_card(session, patient_key)
    if row is None:
        return ""
    clinic_id = row["clinic_id"]
    practice = await practices_store.practice(session, clinic_id)
    zone = ZoneInfo(
        (card.time_zone if card else None)
        or practice.time_zone
        or runtime.settings.revisit_default_time_zone
    )
    return slot_time(row["start"], zone, card.lang if card else "en")


async def withdraw(
    runtime: Runtime,
    ctx: MessengerContext | None,
    session: AsyncSession,
    row: dict[str, Any],
    status: str,
    *,
    winner: str | None,
    tell: bool = True,
) -> None:
    """Close the freed slot with ``status``; everyone still holding its offer (but ``winner``)
    loses it, and with ``tell`` is told the time has gone (on the channel it was offered on)."""
    now = runtime.clock.now()
    offer_id = row["offer_id"]
    await freed_store.update_freed(session, offer_id, now, status=status)
    await runtime.timers.cancel(session, NEXT, offer_id)
    holding = [
        o
        for o in await freed_store.offers(session, offer_id)
        if o["status"] == "offered" and o["patient_key"] != winner
    ]
    keys = [o["patient_key"] for o in holding]
    await freed_store.withdraw_from_conversations(session, offer_id, keys)
    await freed_store.mark_offers(session, offer_id, keys, "gone" if tell else "withdrawn")
    if tell and ctx is not None:
        await queue.enqueue(session, await _gone_messages(runtime, ctx, session, row, holding))


async def _gone_messages(
    runtime: Runtime,
    ctx: MessengerContext,
    session: AsyncSession,
    row: dict[str, Any],
    holding: Sequence[dict[str, Any]],
) -> list[queue.QueuedMessage]:
    now = runtime.clock.now()
    clinic_id = row["clinic_id"]
    practice = await practices_store.practice(session, clinic_id)
    cards = await repository.contact_cards(session, [o["patient_key"] for o in holding])
    out = []
    for offer in holding:
        card = cards.get(offer["patient_key"])
        if card is None:
            continue
        channel = Channel(offer["channel"])
        address = card.address(channel)
        if not address:
            continue
        zone = ZoneInfo(
            card.time_zone or practice.time_zone or runtime.settings.revisit_default_time_zone
        )
        values: dict[str, str | None] = {
            "practice_phone": practice.phone,
            "slot_time": slot_time(row["start"], zone, card.lang),
        }
        provider = ctx.provider_for(channel)
        message_id = str(uuid.uuid5(GONE_NAMESPACE, f"{row['offer_id']}:{offer['patient_key']}"))
        out.append(
            queue.QueuedMessage(
                message_id=message_id,
                idempotency_key=message_id,
                clinic_id=clinic_id,
                patient_key=offer["patient_key"],
                kind="reply",
                channel=channel.value,
                provider=provider.name,
                sender=provider.sender,
                address=address,
                body=text_of(Reply.freed_slot_gone, card.lang, values),
                subject="Re: your message" if channel is Channel.email else None,
                created_at=now,
                reply_kind=Reply.freed_slot_gone.value,
                in_reply_to=offer["message_id"],
            )
        )
    return out


async def after_booking(
    runtime: Runtime,
    ctx: MessengerContext,
    session: AsyncSession,
    *,
    clinic_id: str,
    patient_key: str,
    slot: Slot,
    offer_id: str | None,
    outcome: str,
    booking_request_id: str,
) -> None:
    """What a booking attempt's outcome (``booked``, ``taken``, ``failed``) means for freed
    slots: refilled, gone for everyone, or open again."""
    now = runtime.clock.now()
    row = await freed_store.freed(session, offer_id, lock=True) if offer_id else None
    mine = row is not None and row["claimed_by"] == patient_key and row["status"] == "claimed"
    if outcome == "booked":
        if row is not None and mine:
            await freed_store.update_freed(session, row["offer_id"], now, refilled_at=now)
            await freed_store.mark_offers(session, row["offer_id"], [patient_key], "accepted")
            await withdraw(runtime, ctx, session, row, "refilled", winner=patient_key)
            refilled = SlotRefilled(
                **slot_facts(row), booking_request_id=booking_request_id, refilled_at=now
            )
            await runtime.outbox.stage(
                session,
                [
                    new_event(
                        refilled, clinic_id=clinic_id, patient_key=patient_key, occurred_at=now
                    )
                ],
            )
            return
        # Booked through another conversation: a freed slot on offer at that time is gone.
        for other in await freed_store.on_offer_with_slot(session, clinic_id, slot.slot_id):
            await withdraw(runtime, ctx, session, other, "taken", winner=patient_key)
    elif outcome == "taken" and row is not None and mine:
        await freed_store.mark_offers(session, row["offer_id"], [patient_key], "gone")
        await withdraw(runtime, ctx, session, row, "taken", winner=patient_key)
    elif outcome == "failed" and row is not None and mine:
        await freed_store.update_freed(
            session, row["offer_id"], now, status="offering", claimed_by=None, claimed_reply=None
        )
