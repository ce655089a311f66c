"""Freed slots refilled: a cancelled appointment's time offered to a short ranked list.

1. ``AppointmentCancelled`` (ehr.events) records the freed appointment and schedules
   ``freed_slot_find``: a ``TimerWork`` that reads the EHR with no transaction open and finds
   the free slot the cancellation left (same provider, service and place, same start). Found:
   ``SlotFreed`` (carrying the whole slot and the practice's price for its service) and the
   first batch of offers. Not free (the practice blocked it, someone took it): nothing is
   offered.
2. Each batch ranks the waitlist and the segment members for that service
   (``domain.freed_slots.rank``, with the clinic's outreach policy), queues the offer on each
   patient's channel, keeps it as the patient's open offer (one slot, the shared offer id) and
   stages ``SlotOffered``. ``freed_slot_next`` sends the next batch after a wait while the slot
   is still on offer, and closes it once the time is too near.
3. What happens on a "yes" is in ``freed_booking``.

``PatientBecameEligible`` / ``PatientLeftSegment`` keep the messenger's own list of who is in a
segment for which service line (it reads no other service's tables).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import freed_booking, freed_store, queue, repository
from services.messenger import practices as practices_store
from services.messenger.context import MessengerContext
from services.messenger.domain.booking import slot_time
from services.messenger.domain.checks import WEEK
from services.messenger.domain.conversation import OfferedSlot
from services.messenger.domain.freed_slots import (
    Candidate,
    FreedSlot,
    Source,
    offer_id_for,
    rank,
)
from services.messenger.domain.system_messages import Reply, text_of
from services.messenger.domain.templates import service_name
from services.messenger.scheduling.base import SchedulingUnavailable, Slot, SlotQuery
from shared.consumer import BatchHandler, Delivery
from shared.events import new_event
from shared.events.common import ServiceLine
from shared.events.ehr import AppointmentBooked, AppointmentCancelled, CancellationReason
from shared.events.eligibility import PatientBecameEligible, PatientLeftSegment
from shared.events.messages import OfferSource, SlotFreed, SlotOffered
from shared.runtime import Runtime
from shared.timers import Timer, TimerHandler

FIND = "freed_slot_find"
NEXT = freed_booking.NEXT
OFFER_NAMESPACE = uuid.UUID("0c7e5d3a-91b4-4f2e-8a6d-5e2b7c1f9d04")
EHR_TYPES = frozenset({"AppointmentCancelled", "AppointmentBooked"})
SEGMENT_TYPES = frozenset({"PatientBecameEligible", "PatientLeftSegment"})
SUBJECTS = {"en": "An earlier time opened", "es": "Se liberó un horario"}


def offer_message_id(offer_id: str, patient_key: str) -> str:
    return str(uuid.uuid5(OFFER_NAMESPACE, f"offer:{offer_id}:{patient_key}"))


def ehr_handler(runtime: Runtime, ctx: MessengerContext) -> BatchHandler:
    """Cancellations free a slot; a booking of that time by any route takes it."""

    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        now = runtime.clock.now()
        lead = timedelta(minutes=ctx.settings.freed_slot_lead_minutes)
        for d in deliveries:
            p, clinic_id = d.envelope.payload, d.envelope.clinic_id
            if isinstance(p, AppointmentCancelled):
                # An entry made in error freed nothing; a time about to begin cannot be refilled.
                if p.reason_code is CancellationReason.entered_in_error or p.start <= now + lead:
                    continue
                offer_id = offer_id_for(clinic_id, p.appointment_id)
                new = await freed_store.record_freed(
                    session,
                    {
                        "offer_id": offer_id,
                        "clinic_id": clinic_id,
                        "appointment_id": p.appointment_id,
                        "freed_by": d.envelope.patient_key,
                        "start": p.start,
                        "service_line": p.service_line.value,
                        "provider_id": p.provider_id,
                        "location_id": p.location_id,
                        "freed_at": d.envelope.occurred_at,
                    },
                )
                if new:
                    await runtime.timers.schedule(
                        session, FIND, offer_id, now, patient_key=d.envelope.patient_key
                    )
            elif isinstance(p, AppointmentBooked):
                for row in await freed_store.booked_elsewhere(
                    session, clinic_id, p.provider_id, p.start
                ):
                    if row["claimed_by"] == d.envelope.patient_key:
                        continue  # the EHR confirming the booking Revisit is making
                    await freed_booking.withdraw(runtime, ctx, session, row, "taken", winner=None)

    return handle


def segment_handler(runtime: Runtime) -> BatchHandler:
    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        joined: list[dict[str, Any]] = []
        left: list[str] = []
        for d in deliveries:
            p = d.envelope.payload
            if isinstance(p, PatientBecameEligible):
                due = p.documented.due_on if p.documented else None
                due = due or (p.due_at.date() if p.due_at else p.opens_on)
                joined.append(
                    {
                        "e": p.eligibility_id,
                        "c": d.envelope.clinic_id,
                        "pk": d.envelope.patient_key,
                        "seg": p.segment.value,
                        "sl": p.service_line.value,
                        "due": due,
                        "m": p.needs_marketing_consent,
                    }
                )
            elif isinstance(p, PatientLeftSegment):
                left.append(p.eligibility_id)
        await freed_store.join_segment(session, joined)
        await freed_store.leave_segment(session, left, runtime.clock.now())

    return handle


def freed_slot_of(row: dict[str, Any]) -> FreedSlot:
    return FreedSlot(
        offer_id=row["offer_id"],
        clinic_id=row["clinic_id"],
        slot_id=row["slot_id"] or "",
        start=row["start"],
        service_line=ServiceLine(row["service_line"]),
        provider_id=row["provider_id"],
        location_id=row["location_id"],
        freed_by=row["freed_by"],
    )


@dataclass(frozen=True)
class FindFreedSlot:
    """Read the EHR for the slot a cancellation left (a TimerWork: no transaction open)."""

    runtime: Runtime
    ctx: MessengerContext

    async def prepare(self, session: AsyncSession, timer: Timer) -> dict[str, Any] | None:
        row = await freed_store.freed(session, timer.key)
        return row if row is not None and row["status"] == "looking" else None

    async def call(self, timer: Timer, prepared: dict[str, Any] | None) -> Slot | bool | None:
        if prepared is None:
            return None
        query = SlotQuery(
            prepared["clinic_id"],
            ServiceLine(prepared["service_line"]),
            prepared["provider_id"],
            prepared["location_id"],
            after=prepared["start"],
        )
        try:
            return await self.ctx.scheduling.freed_slot(query, prepared["start"])
        except SchedulingUnavailable:
            return False  # could not ask: try again shortly

    async def record(
        self,
        session: AsyncSession,
        timer: Timer,
        prepared: dict[str, Any] | None,
        found: Slot | bool | None,
    ) -> None:
        now = self.runtime.clock.now()
        row = await freed_store.freed(session, timer.key, lock=True)
        if prepared is None or row is None or row["status"] != "looking":
            return
        if found is False:
            tries = int(timer.payload.get("tries", 0)) + 1
            if tries < 3:
                await self.runtime.timers.schedule(
                    session,
                    FIND,
                    timer.key,
                    now + timedelta(seconds=30),
                    patient_key=timer.patient_key,
                    payload={"tries": tries},
                )
            else:
                await freed_store.update_freed(session, timer.key, now, status="not_free")
            return
        if not isinstance(found, Slot):
            await freed_store.update_freed(session, timer.key, now, status="not_free")
            return
        price = (await freed_store.prices(session, row["clinic_id"])).get(row["service_line"])
        await freed_store.update_freed(
            session,
            timer.key,
            now,
            status="offering",
            slot_id=found.slot_id,
            location_id=row["location_id"] or found.location_id,
            price_cents=price[0] if price else None,
            currency=price[1] if price else None,
        )
        row = await freed_store.freed(session, timer.key)
        assert row is not None
        event = SlotFreed(**freed_booking.slot_facts(row), appointment_id=row["appointment_id"])
        await self.runtime.outbox.stage(
            session,
            [
                new_event(
                    event,
                    clinic_id=row["clinic_id"],
                    patient_key=row["freed_by"],
                    occurred_at=now,
                )
            ],
        )
        await offer_batch(self.runtime, self.ctx, session, timer.key)


def next_batch_handler(runtime: Runtime, ctx: MessengerContext) -> TimerHandler:
    async def handle(session: AsyncSession, timers: Sequence[Timer]) -> None:
        for timer in timers:
            await offer_batch(runtime, ctx, session, timer.key)

    return handle


async def offer_batch(
    runtime: Runtime, ctx: MessengerContext, session: AsyncSession, offer_id: str
) -> int:
    """Offer the slot to the next few patients; returns how many were offered."""
    now = runtime.clock.now()
    settings = ctx.settings
    row = await freed_store.freed(session, offer_id, lock=True)
    if row is None or row["status"] not in ("offering", "claimed"):
        return 0
    if row["start"] <= now + timedelta(minutes=settings.freed_slot_lead_minutes):
        await freed_booking.withdraw(runtime, ctx, session, row, "closed", winner=None, tell=False)
        return 0
    wait = timedelta(minutes=settings.freed_slot_batch_minutes)
    await runtime.timers.schedule(session, NEXT, offer_id, now + wait)
    if row["status"] == "claimed":
        return 0  # someone said yes and is being booked: wait for that answer
    slot = freed_slot_of(row)
    clinic_id = slot.clinic_id
    found = await freed_store.candidates(
        session, clinic_id, slot.service_line.value, slot.provider_id
    )
    keys = [c["patient_key"] for c in found]
    cards = await repository.contact_cards(session, keys)
    recent = await queue.recent_outreach(session, keys, now - WEEK)
    escalated = await repository.with_open_escalations(session, keys)
    earlier = await freed_store.offers(session, offer_id)
    candidates = [
        Candidate(
            c["patient_key"],
            Source(c["source"]),
            cards.get(c["patient_key"]),
            since=c["since"],
            due_on=c["due_on"],
            marketing=bool(c["marketing"]),
            recent_sends=tuple(recent.get(c["patient_key"], ())),
            escalation_open=c["patient_key"] in escalated,
        )
        for c in found
    ]
    picks, _skipped = rank(
        slot,
        candidates,
        policy=await freed_store.policy(session, clinic_id),
        now=now,
        batch_size=settings.freed_slot_batch_size,
        already_offered=frozenset(o["patient_key"] for o in earlier),
    )
    if not picks:
        return 0
    batch = int(row["batches"]) + 1
    practice = await practices_store.practice(session, clinic_id)
    names = await practices_store.provider_names(session, [(clinic_id, slot.provider_id)])
    expires = min(
        now + timedelta(hours=settings.offer_valid_hours),
        slot.start - timedelta(minutes=settings.freed_slot_lead_minutes),
    )
    offered = OfferedSlot(slot.slot_id, slot.start, slot.provider_id, slot.location_id)
    messages, rows, events = [], [], []
    for pick in picks:
        card = cards[pick.patient_key]
        language = card.lang
        zone = ZoneInfo(
            card.time_zone or practice.time_zone or runtime.settings.revisit_default_time_zone
        )
        values: dict[str, str | None] = {
            "practice_name": practice.name,
            "practice_phone": practice.phone,
            "provider_name": names.get((clinic_id, slot.provider_id or "")),
            "service_name": service_name(slot.service_line, language),
            "slot_time": slot_time(slot.start, zone, language),
        }
        provider = ctx.provider_for(pick.channel)
        message_id = offer_message_id(offer_id, pick.patient_key)
        messages.append(
            queue.QueuedMessage(
                message_id=message_id,
                idempotency_key=message_id,
                clinic_id=clinic_id,
                patient_key=pick.patient_key,
                kind="reply",
                channel=pick.channel.value,
                provider=provider.name,
                sender=provider.sender,
                address=card.address(pick.channel) or "",
                body=text_of(Reply.freed_slot_offer, language, values),
                subject=SUBJECTS[language] if pick.channel.value == "email" else None,
                created_at=now,
                reply_kind=Reply.freed_slot_offer.value,
                expires_at=expires,
            )
        )
        await freed_store.offer_in_conversation(
            session, clinic_id, pick.patient_key, offered, expires, offer_id, slot.service_line
        )
        rows.append(
            {
                "offer_id": offer_id,
                "patient_key": pick.patient_key,
                "batch": batch,
                "source": pick.source.value,
                "channel": pick.channel.value,
                "message_id": message_id,
                "offered_at": now,
            }
        )
        offer = SlotOffered(
            **freed_booking.slot_facts(row),
            batch=batch,
            source=OfferSource(pick.source.value),
            channel=pick.channel,
        )
        events.append(
            new_event(offer, clinic_id=clinic_id, patient_key=pick.patient_key, occurred_at=now)
        )
    await queue.enqueue(session, messages)
    await freed_store.record_offers(session, rows)
    await freed_store.update_freed(session, offer_id, now, batches=batch)
    await runtime.outbox.stage(session, events)
    return len(picks)
