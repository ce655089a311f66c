"""The sandbox scheduling adapter: a practice that always has a few open times.

Open slots are generated, not stored: on weekdays at 09:00, 11:00, 14:00 and 16:00 in the
practice's time zone, from the next day on. A booked slot is stored in
``messenger.sandbox_bookings`` and is never offered again; booking the same request twice
returns the first appointment.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messenger.repository import SCHEMA
from services.messenger.scheduling.base import (
    Booked,
    BookingResult,
    SchedulingAdapter,
    Slot,
    SlotQuery,
)
from shared.events.common import ServiceLine

HOURS = (time(9), time(11), time(14), time(16))
SLOT_MINUTES = 30


class SandboxScheduling(SchedulingAdapter):
    name = "sandbox"

    def __init__(self, sessions: async_sessionmaker[AsyncSession], zone: str) -> None:
        self._sessions = sessions
        self._zone = ZoneInfo(zone)

    def _candidates(self, query: SlotQuery, count: int) -> list[Slot]:
        provider = query.provider_id or "any"
        local = query.after.astimezone(self._zone)
        day = local.date() + timedelta(days=1)
        out: list[Slot] = []
        while len(out) < count:
            if day.weekday() < 5:
                for hour in HOURS:
                    start = datetime.combine(day, hour, tzinfo=self._zone)
                    slot_id = f"sbx-{query.clinic_id}-{provider}-{start:%Y%m%d%H%M}"
                    out.append(
                        Slot(
                            slot_id=slot_id,
                            start=start,
                            end=start + timedelta(minutes=SLOT_MINUTES),
                            provider_id=query.provider_id,
                            location_id=query.location_id,
                        )
                    )
            day += timedelta(days=1)
        return out

    async def freed_slot(self, query: SlotQuery, start: datetime) -> Slot | None:
        """The generated slot at ``start``, unless the sandbox has booked it."""
        local = start.astimezone(self._zone)
        if local.weekday() >= 5 or local.time() not in HOURS:
            return None
        provider = query.provider_id or "any"
        slot_id = f"sbx-{query.clinic_id}-{provider}-{local:%Y%m%d%H%M}"
        async with self._sessions() as session:
            taken = (
                await session.execute(
                    text(f"SELECT 1 FROM {SCHEMA}.sandbox_bookings WHERE slot_id = :s"),
                    {"s": slot_id},
                )
            ).first()
        if taken is not None:
            return None
        return Slot(
            slot_id,
            local,
            local + timedelta(minutes=SLOT_MINUTES),
            query.provider_id,
            query.location_id,
        )

    async def find_slots(self, query: SlotQuery) -> list[Slot]:
        candidates = self._candidates(query, query.limit + 12)
        async with self._sessions() as session:
            taken = {
                r[0]
                for r in (
                    await session.execute(
                        text(
                            f"SELECT slot_id FROM {SCHEMA}.sandbox_bookings "
                            "WHERE slot_id = ANY(:ids)"
                        ),
                        {"ids": [s.slot_id for s in candidates]},
                    )
                ).all()
            }
        return [s for s in candidates if s.slot_id not in taken][: query.limit]

    async def book(
        self,
        slot: Slot,
        *,
        clinic_id: str,
        patient_id: str,
        booking_request_id: str,
        service_line: ServiceLine | None = None,
    ) -> BookingResult:
        appointment_id = f"sbx-appt-{uuid.uuid5(uuid.NAMESPACE_URL, booking_request_id).hex[:12]}"
        async with self._sessions() as session, session.begin():
            row = (
                await session.execute(
                    text(
                        f"INSERT INTO {SCHEMA}.sandbox_bookings (slot_id, booking_request_id, "
                        "clinic_id, patient_key, appointment_id) VALUES (:s, :b, :c, :p, :a) "
                        "ON CONFLICT DO NOTHING RETURNING appointment_id"
                    ),
                    {
                        "s": slot.slot_id,
                        "b": booking_request_id,
                        "c": clinic_id,
                        "p": f"{clinic_id}:{patient_id}",
                        "a": appointment_id,
                    },
                )
            ).first()
            if row is not None:
                return BookingResult(Booked.booked, appointment_id)
            earlier = (
                await session.execute(
                    text(
                        f"SELECT appointment_id FROM {SCHEMA}.sandbox_bookings "
                        "WHERE booking_request_id = :b"
                    ),
                    {"b": booking_request_id},
                )
            ).first()
        if earlier is not None:
            return BookingResult(Booked.booked, earlier[0])
        return BookingResult(Booked.taken)
