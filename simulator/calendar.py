"""The practice's bookable time: who can see a patient, where and when, and what is taken.

Each provider works weekdays 08:00-17:00 in the clinic's zone at their own location. Time is a
grid of 30-minute cells; a slot for a service covers as many cells as the service takes, so a
45-minute laser session needs two free cells in a row. Free slots are worked out day by day
when asked for, never stored: only the taken cells and the bookings are kept.

A slot id names the provider, the local start and, when the slot is for one of the provider's
services, its code: ``S-<provider>-<YYYYMMDDHHMM>[-<service code>]``. Everything a booking
needs can be read back from the id, so ids stay valid across restarts of the scheduling server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from simulator.model import Clinic, Provider, Service

OPENS = time(8)
CLOSES = time(17)
CELL_MINUTES = 30
CELLS_PER_DAY = (CLOSES.hour - OPENS.hour) * 60 // CELL_MINUTES
# How far ahead a search looks before it gives up (a fully booked or non-existent service).
SEARCH_DAYS = 180


@dataclass(frozen=True)
class OpenSlot:
    slot_id: str
    start: datetime
    end: datetime
    provider_id: str
    location_id: str
    service_code: str | None = None
    service_line: str | None = None


@dataclass(frozen=True)
class BookedAppointment:
    """An appointment the patient asked for by text and the practice's scheduler made."""

    appointment_id: str
    patient_id: str
    provider_id: str
    location_id: str
    start: datetime
    end: datetime
    service_line: str | None
    request_id: str
    slot_id: str = ""
    service_code: str | None = None


class Booking(StrEnum):
    created = "created"
    existing = "existing"  # the same booking request was made before: nothing new
    taken = "taken"  # the slot is no longer free
    unknown = "unknown"  # not a slot this practice has (malformed, past, outside hours)


@dataclass(frozen=True)
class BookingOutcome:
    status: Booking
    appointment: BookedAppointment | None = None


def appointment_id_for(request_id: str) -> str:
    # From the request, not a counter: the same bookings get the same ids in any order.
    digest = hashlib.blake2b(request_id.encode(), digest_size=6).hexdigest().upper()
    return f"A-S{digest}"


class Calendar:
    def __init__(self, clinic: Clinic, time_zone: str | None = None) -> None:
        self.clinic = clinic
        self.zone = ZoneInfo(time_zone or clinic.time_zone)
        self._providers = {p.provider_id: p for p in clinic.providers}
        self._services = {s.code: s for s in clinic.catalogue}
        # provider -> local day -> taken cell indexes
        self._taken: dict[str, dict[date, set[int]]] = {}
        self._by_request: dict[str, BookedAppointment] = {}
        self._by_id: dict[str, BookedAppointment] = {}

    # --- what is free ------------------------------------------------------------------------

    def free_slots(
        self,
        *,
        after: datetime,
        provider_id: str | None = None,
        location_id: str | None = None,
        service_line: str | None = None,
        limit: int = 3,
    ) -> list[OpenSlot]:
        """Up to ``limit`` free slots starting at or after ``after``, earliest first."""
        offering = self._offering(provider_id, location_id, service_line)
        if not offering or limit <= 0:
            return []
        found: list[OpenSlot] = []
        first_day = after.astimezone(self.zone).date()
        for day in _days(first_day, SEARCH_DAYS):
            if day.weekday() >= 5:
                continue
            today = [
                slot
                for provider, service in offering
                for slot in self._free_on(provider, service, day)
                if slot.start >= after
            ]
            today.sort(key=lambda s: (s.start, s.provider_id))
            found.extend(today[: limit - len(found)])
            if len(found) >= limit:
                break
        return found

    def _offering(
        self, provider_id: str | None, location_id: str | None, service_line: str | None
    ) -> list[tuple[Provider, Service | None]]:
        """Each provider who fits the search, with the service they would see the patient for."""
        if provider_id is not None:
            candidates = [self._providers[provider_id]] if provider_id in self._providers else []
        else:
            candidates = sorted(self._providers.values(), key=lambda p: p.provider_id)
        out: list[tuple[Provider, Service | None]] = []
        for provider in candidates:
            if location_id is not None and provider.location_id != location_id:
                continue
            if service_line is None:
                out.append((provider, None))
                continue
            service = self._service_for(provider, service_line)
            if service is not None:
                out.append((provider, service))
        return out

    def _service_for(self, provider: Provider, service_line: str) -> Service | None:
        for code in provider.service_codes:
            service = self._services.get(code)
            if service is not None and service.service_line.value == service_line:
                return service
        return None

    def _free_on(
        self, provider: Provider, service: Service | None, day: date
    ) -> Iterator[OpenSlot]:
        cells = _cells(service)
        taken = self._taken.get(provider.provider_id, {}).get(day, set())
        for first in range(CELLS_PER_DAY - cells + 1):
            if taken.isdisjoint(range(first, first + cells)):
                yield self._slot(provider, service, self._cell_start(day, first))

    def _slot(self, provider: Provider, service: Service | None, start: datetime) -> OpenSlot:
        minutes = service.minutes if service else CELL_MINUTES
        slot_id = f"S-{provider.provider_id}-{start:%Y%m%d%H%M}"
        if service is not None:
            slot_id += f"-{service.code}"
        return OpenSlot(
            slot_id=slot_id,
            start=start,
            end=start + timedelta(minutes=minutes),
            provider_id=provider.provider_id,
            location_id=provider.location_id,
            service_code=service.code if service else None,
            service_line=service.service_line.value if service else None,
        )

    def _cell_start(self, day: date, cell: int) -> datetime:
        opens = datetime.combine(day, OPENS, tzinfo=self.zone)
        return opens + timedelta(minutes=cell * CELL_MINUTES)

    # --- taking time -------------------------------------------------------------------------

    def reserve(self, provider_id: str, start: datetime, minutes: int) -> None:
        """Mark ``minutes`` from ``start`` as taken (an appointment the EHR already has)."""
        local = start.astimezone(self.zone)
        end = local + timedelta(minutes=max(minutes, 1))
        days = self._taken.setdefault(provider_id, {})
        opens = datetime.combine(local.date(), OPENS, tzinfo=self.zone)
        first = int((local - opens).total_seconds() // (CELL_MINUTES * 60))
        last = int(((end - opens).total_seconds() - 1) // (CELL_MINUTES * 60))
        cells = {c for c in range(first, last + 1) if 0 <= c < CELLS_PER_DAY}
        if cells:
            days.setdefault(local.date(), set()).update(cells)

    def slot(self, slot_id: str) -> OpenSlot | None:
        """The slot an id names, free or not; None when the practice has no such slot."""
        for provider in self._providers.values():
            prefix = f"S-{provider.provider_id}-"
            if slot_id.startswith(prefix):
                found = self._parse(provider, slot_id[len(prefix) :])
                if found is not None:
                    return found
        return None

    def _parse(self, provider: Provider, rest: str) -> OpenSlot | None:
        stamp, code = rest[:12], rest[13:]
        if not (stamp.isdigit() and len(stamp) == 12):
            return None
        if len(rest) > 12 and (rest[12] != "-" or not code):
            return None
        service: Service | None = None
        if code:
            if code not in provider.service_codes or code not in self._services:
                return None
            service = self._services[code]
        try:
            naive = datetime.strptime(stamp, "%Y%m%d%H%M")
        except ValueError:
            return None
        start = naive.replace(tzinfo=self.zone)
        offset = (start - datetime.combine(start.date(), OPENS, tzinfo=self.zone)).total_seconds()
        cell, remainder = divmod(int(offset), CELL_MINUTES * 60)
        if start.weekday() >= 5 or remainder or cell < 0:
            return None
        if cell + _cells(service) > CELLS_PER_DAY:
            return None
        return self._slot(provider, service, start)

    def is_free(self, slot: OpenSlot) -> bool:
        local = slot.start.astimezone(self.zone)
        taken = self._taken.get(slot.provider_id, {}).get(local.date(), set())
        opens = datetime.combine(local.date(), OPENS, tzinfo=self.zone)
        first = int((local - opens).total_seconds()) // (CELL_MINUTES * 60)
        minutes = int((slot.end - slot.start).total_seconds() // 60)
        return taken.isdisjoint(range(first, first + -(-minutes // CELL_MINUTES)))

    def book(
        self, slot_id: str, *, patient_id: str, request_id: str, now: datetime | None = None
    ) -> BookingOutcome:
        """Book ``slot_id`` for the patient, once per ``request_id`` (asking twice books once).

        ``now``: when given, a slot that has already started is ``unknown`` (an expired offer).
        """
        earlier = self._by_request.get(request_id)
        if earlier is not None:
            return BookingOutcome(Booking.existing, earlier)
        slot = self.slot(slot_id)
        if slot is None or (now is not None and slot.start <= now):
            return BookingOutcome(Booking.unknown)
        if not self.is_free(slot):
            return BookingOutcome(Booking.taken)
        minutes = int((slot.end - slot.start).total_seconds() // 60)
        self.reserve(slot.provider_id, slot.start, minutes)
        appointment = BookedAppointment(
            appointment_id=appointment_id_for(request_id),
            patient_id=patient_id,
            provider_id=slot.provider_id,
            location_id=slot.location_id,
            start=slot.start,
            end=slot.end,
            service_line=slot.service_line,
            request_id=request_id,
            slot_id=slot.slot_id,
            service_code=slot.service_code,
        )
        self._by_request[request_id] = appointment
        self._by_id[appointment.appointment_id] = appointment
        return BookingOutcome(Booking.created, appointment)

    def appointment(self, appointment_id: str) -> BookedAppointment | None:
        return self._by_id.get(appointment_id)


def _cells(service: Service | None) -> int:
    minutes = service.minutes if service else CELL_MINUTES
    return max(1, -(-minutes // CELL_MINUTES))


def _days(first: date, count: int) -> Iterator[date]:
    for n in range(count):
        yield first + timedelta(days=n)
