"""The EHR scheduling port: find open slots, request an appointment in one.

Implementations: ``FhirScheduling`` (FHIR R4 ``Slot`` search and ``Appointment`` create over
httpx) and ``SandboxScheduling`` (ships with the project: a practice that always has a few
open times). Booking is idempotent per ``booking_request_id``: asking twice books once.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.events.common import ServiceLine


@dataclass(frozen=True)
class Slot:
    slot_id: str
    start: datetime
    end: datetime | None = None
    provider_id: str | None = None
    location_id: str | None = None


@dataclass(frozen=True)
class SlotQuery:
    clinic_id: str
    service_line: ServiceLine
    provider_id: str | None
    location_id: str | None
    after: datetime
    limit: int = 3


class Booked(StrEnum):
    booked = "booked"
    taken = "taken"  # the slot is no longer free
    refused = "refused"  # the EHR said no for another reason: a person takes over
    # Revisit may not book this itself (the EHR takes no writes, or the patient could not be
    # matched in the EHR): a person books it by hand, ``reason`` says why.
    needs_person = "needs_person"


@dataclass(frozen=True)
class BookingResult:
    outcome: Booked
    appointment_id: str | None = None
    reason: str | None = None  # for needs_person: a HandoffReason value
    # What a person needs to book by hand (EHR ids, never the patient's details).
    details: dict[str, str] | None = None


class SchedulingUnavailable(Exception):
    """The EHR could not be reached or answered with a server error (PHI-free message)."""


class SchedulingAdapter(abc.ABC):
    name: str

    @abc.abstractmethod
    async def find_slots(self, query: SlotQuery) -> list[Slot]:
        """Up to ``query.limit`` free slots after ``query.after``, earliest first."""

    @abc.abstractmethod
    async def book(
        self,
        slot: Slot,
        *,
        clinic_id: str,
        patient_id: str,
        booking_request_id: str,
        service_line: ServiceLine | None = None,
    ) -> BookingResult:
        """Ask the EHR for an appointment in ``slot`` (idempotent per booking request)."""

    async def freed_slot(self, query: SlotQuery, start: datetime) -> Slot | None:
        """The free slot a cancelled appointment at ``start`` left (the same provider, service
        and place), read from the EHR now; None when the EHR shows no such free slot (the
        practice blocked the time, or someone already took it)."""
        found = await self.find_slots(
            SlotQuery(
                query.clinic_id,
                query.service_line,
                query.provider_id,
                query.location_id,
                after=start - timedelta(minutes=1),
                limit=10,
            )
        )
        return next((s for s in found if s.start == start), None)

    async def close(self) -> None:
        return None
