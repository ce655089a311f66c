"""Booking timers call the EHR outside any transaction, once, whatever their neighbours do."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.booking import BookingWork
from services.messenger.booking_timers import booking_timers
from services.messenger.repository import SCHEMA
from services.messenger.scheduling.base import (
    Booked,
    BookingResult,
    SchedulingAdapter,
    Slot,
    SlotQuery,
)
from shared.clock import FixedClock
from shared.timer_poller import TimerPoller
from shared.timers import Timer
from tests.messenger.conftest import Messenger


class WatchingScheduling(SchedulingAdapter):
    """An EHR that records each call and whether a transaction held the timer meanwhile."""

    name = "watching"

    def __init__(self, messenger: Messenger) -> None:
        self.messenger = messenger
        self.searches = 0
        self.held_during_call: list[bool] = []

    async def _timer_held(self) -> bool:
        async with self.messenger.runtime.engine.connect() as conn:
            await conn.execute(text("SET lock_timeout = '50ms'"))
            try:
                await conn.execute(
                    text(f"SELECT 1 FROM {SCHEMA}.timers WHERE kind = 'offer_slots' FOR UPDATE")
                )
            except Exception:
                return True
            return False

    async def find_slots(self, query: SlotQuery) -> list[Slot]:
        self.searches += 1
        self.held_during_call.append(await self._timer_held())
        return [Slot(f"slot-{uuid.uuid4().hex[:6]}", query.after + timedelta(days=1))]

    async def book(
        self, slot: Slot, *, clinic_id: str, patient_id: str, booking_request_id: str
    ) -> BookingResult:
        return BookingResult(Booked.booked, "appt-1")


async def test_an_offer_timer_asks_the_ehr_once_outside_its_transaction_despite_a_bad_neighbour(
    messenger: Messenger,
) -> None:
    patient_key, _ = await messenger.new_patient()
    ehr = WatchingScheduling(messenger)
    ctx = dataclasses.replace(messenger.ctx, scheduling=ehr)
    work = BookingWork(messenger.runtime, ctx)
    # Far in the future, so the service's own poller (system clock) leaves them to this one.
    due = datetime.now(UTC) + timedelta(days=400)
    reply = f"in-{uuid.uuid4().hex[:10]}"
    async with messenger.runtime.sessions() as session, session.begin():
        await messenger.runtime.timers.schedule(
            session, "offer_slots", reply, due, patient_key=patient_key, payload={"reply": reply}
        )
        await messenger.runtime.timers.schedule(session, "explode", reply, due)

    async def explode(session: AsyncSession, timers: Sequence[Timer]) -> None:
        raise ValueError("a neighbour that always fails")

    poller = TimerPoller(
        messenger.runtime.sessions,
        SCHEMA,
        FixedClock(due),
        {**booking_timers(work), "explode": explode},
    )
    try:
        for _ in range(3):
            await poller.fire_due()

        assert ehr.searches == 1  # a failed neighbour never makes it call the EHR again
        assert ehr.held_during_call == [False]  # nothing held the timer while the EHR answered
        offer = await messenger.scalar(
            f"SELECT jsonb_array_length(offer) FROM {SCHEMA}.conversations WHERE patient_key = :pk",
            pk=patient_key,
        )
        assert offer == 1
        left = await messenger.rows(
            f"SELECT kind FROM {SCHEMA}.timers WHERE timer_key = :k", k=reply
        )
        assert left == [{"kind": "explode"}]
    finally:
        async with messenger.runtime.sessions() as session, session.begin():
            await session.execute(
                text(f"DELETE FROM {SCHEMA}.timers WHERE timer_key = :k"), {"k": reply}
            )
