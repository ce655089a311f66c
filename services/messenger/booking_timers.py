"""The booking conversation's timers as ``TimerWork``: read, call the EHR, record.

``offer_slots`` and ``book_slot`` are fired by the runtime's timer poller in three steps, so
the EHR is called with no transaction open (see ``booking`` for what each does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import practices as practices_store
from services.messenger.booking import BookingWork, booking_request_id, find_offer, opt
from services.messenger.domain.booking import Offer
from services.messenger.scheduling.base import (
    BookingResult,
    SchedulingUnavailable,
    Slot,
    SlotQuery,
)
from shared.events.common import ServiceLine
from shared.timers import Timer, TimerWork


def booking_timers(work: BookingWork) -> dict[str, TimerWork]:
    return {"offer_slots": OfferSlots(work), "book_slot": BookSlot(work)}


@dataclass(frozen=True)
class OfferSlots:
    """Search the EHR for times to offer (a TimerWork)."""

    work: BookingWork

    async def prepare(self, session: AsyncSession, timer: Timer) -> tuple[SlotQuery, list[str]]:
        clinic_id, state, *_ = await self.work._context(session, timer, lock=False)
        # The practice's other named providers: their times, said as theirs, beat anyone's.
        named = await practices_store.providers_of(session, clinic_id)
        return self.work.slot_query(state, clinic_id), sorted(named)

    async def call(self, timer: Timer, prepared: tuple[SlotQuery, list[str]]) -> Offer | None:
        query, others = prepared
        try:
            return await find_offer(self.work.ctx.scheduling, query, others)
        except SchedulingUnavailable:
            return None

    async def record(
        self,
        session: AsyncSession,
        timer: Timer,
        prepared: tuple[SlotQuery, list[str]],
        result: Offer | None,
    ) -> None:
        await self.work.record_offer(session, timer, result)


@dataclass(frozen=True)
class BookSlot:
    """Ask the EHR for the chosen time (a TimerWork; idempotent per booking request)."""

    work: BookingWork

    async def prepare(self, session: AsyncSession, timer: Timer) -> tuple[Slot, ServiceLine]:
        _, state, *_ = await self.work._context(session, timer, lock=False)
        slot = Slot(
            slot_id=str(timer.payload["slot_id"]),
            start=datetime.fromisoformat(str(timer.payload["start"])),
            provider_id=opt(timer.payload.get("provider_id")),
            location_id=opt(timer.payload.get("location_id")),
        )
        return slot, state.service_line

    async def call(self, timer: Timer, prepared: tuple[Slot, ServiceLine]) -> BookingResult | None:
        slot, service_line = prepared
        patient_key = timer.patient_key or ""
        clinic_id, _, patient_id = patient_key.partition(":")
        reply_to = str(timer.payload.get("reply") or timer.key)
        try:
            return await self.work.ctx.scheduling.book(
                slot,
                clinic_id=clinic_id,
                patient_id=patient_id,
                booking_request_id=booking_request_id(reply_to, slot.slot_id),
                service_line=service_line,
            )
        except SchedulingUnavailable:
            return None

    async def record(
        self,
        session: AsyncSession,
        timer: Timer,
        prepared: tuple[Slot, ServiceLine],
        result: BookingResult | None,
    ) -> None:
        await self.work.record_booking(session, timer, prepared[0], result)
