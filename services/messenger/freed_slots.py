"""Freed slots refilled: a cancelled appointment's time offered to a short ranked list.

1. ``AppointmentCancelled`` (ehr.events) records the freed appointment and schedules
   ``freed_slot_find``: a ``TimerWork`` that reads the EHR with no transaction open and finds
   the free slot the cancellation left (same provider, service and place, same start). Found:
   ``SlotFreed`` (carrying the whole slot and the practice's price for its service) and the
   first batch of offers. Not free (the practice blocked it, someone took it): nothing is
   offered.
2. Each batch (``freed_offers``) ranks the waitlist and the segment members for that service
   (``domain.freed_slots.rank``, with the clinic's outreach policy), queues the offer on each
   patient's channel, keeps it as the patient's open offer (one slot, the shared offer id) and
   stages ``SlotOffered``. ``freed_slot_next`` sends the next batch after a wait while the slot
   is still on offer, and closes it once the time is too near.
3. What happens on a "yes" is in ``freed_booking``.

``PatientBecameEligible`` / ``PatientLeftSegment`` keep the messenger's own list of who is in a
segment for which service line (it reads no other service's tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import freed_booking, freed_offers, freed_store, waitlist_store
from services.messenger.context import MessengerContext
from services.messenger.domain.freed_slots import offer_id_for
from services.messenger.scheduling.base import SchedulingUnavailable, Slot, SlotQuery
from shared.consumer import BatchHandler, Delivery
from shared.events import new_event
from shared.events.common import ServiceLine
from shared.events.ehr import AppointmentBooked, AppointmentCancelled, CancellationReason
from shared.events.eligibility import PatientBecameEligible, PatientLeftSegment
from shared.events.messages import SlotFreed
from shared.runtime import Runtime
from shared.timers import Timer

FIND = "freed_slot_find"
EHR_TYPES = frozenset({"AppointmentCancelled", "AppointmentBooked"})
SEGMENT_TYPES = frozenset({"PatientBecameEligible", "PatientLeftSegment"})


def ehr_handler(runtime: Runtime, ctx: MessengerContext) -> BatchHandler:
    """Cancellations free a slot; a booking of that time by any route takes it."""

    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        now = runtime.clock.now()
        lead = timedelta(minutes=ctx.settings.freed_slot_lead_minutes)
        for d in deliveries:
            p, clinic_id = d.envelope.payload, d.envelope.clinic_id
            if isinstance(p, AppointmentCancelled) and ctx.settings.freed_slots:
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
        await waitlist_store.join_segment(session, joined)
        await waitlist_store.leave_segment(session, left, runtime.clock.now())

    return handle


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
        price = (await waitlist_store.prices(session, row["clinic_id"])).get(row["service_line"])
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
        await freed_offers.offer_batch(self.runtime, self.ctx, session, timer.key)
