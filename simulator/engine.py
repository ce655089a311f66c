"""The simulation loop: the practice's EHR, its phones and its calendar, one tick at a time.

Each tick moves the shared clock forward by ``step``, sends the EHR records whose time has
come (history first, then what the day brings: appointments kept or missed, visits with their
charges), lets the patients read what the sandbox delivered and answer (after a delay of their
own), turns bookings made in a conversation into appointments and visits, and waits for the
pipeline to settle before the next tick. ``speed`` caps how fast simulated time runs.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import advance_clock, current_time
from simulator.calendar import BookedAppointment
from simulator.feed import EhrFeed
from simulator.model import (
    AppointmentRecord,
    AppointmentStatus,
    Clinic,
    Happening,
    Practice,
    Service,
)
from simulator.phones import Phones
from simulator.practice import attends, visit_for
from simulator.settle import Settler, next_timer
from simulator.staff import Staff

log = logging.getLogger("simulator")
# Time moves in whole steps: an hour in the practice's day, three at night. Finer steps would
# follow each timer to the minute, but every tick waits for the pipeline to settle, and a
# month must pass in minutes. A reply written at 10:17 reaches the practice at 11:00.
DAY_STEP, NIGHT_STEP = timedelta(hours=1), timedelta(hours=3)
DAY_HOURS = range(7, 21)
CLOCK_PROPAGATION_S = 0.1


@dataclass(frozen=True)
class Endpoints:
    ingest: str
    messenger: str
    sequencer: str
    escalation: str
    mllp_host: str
    mllp_port: int
    api_key: str  # the practice's integration key (ingest)
    token: str  # a staff token (the sandbox phone is an operator tool)


@dataclass
class SimStats:
    """What the simulation did, for the live view and the end-of-run summary (no PHI)."""

    records_sent: int = 0
    records_refused: int = 0
    messages_received: int = 0  # by the patients' phones
    replies_sent: int = 0
    bookings: int = 0  # made in a conversation, through the practice's scheduling API
    stops: int = 0
    ticks: int = 0
    busy_ticks: int = 0  # the pipeline had not settled when the tick's wait ran out
    history: tuple[int, int] = (0, 0)  # records of the EHR's past sent, of all of them
    cases_taken: int = 0  # escalations the practice's staff acknowledged
    cases_closed: int = 0


class Simulation:
    def __init__(
        self,
        practice: Practice,
        endpoints: Endpoints,
        engine: AsyncEngine,
        *,
        max_step: timedelta = timedelta(hours=6),
        speed_hours_per_second: float = 4.0,
        http: httpx.AsyncClient | None = None,
        feed: EhrFeed | None = None,
    ) -> None:
        self.practice = practice
        self.endpoints = endpoints
        self.engine = engine
        self.settler = Settler(engine)
        self.max_step = max_step
        self.zone = ZoneInfo(practice.clinic.time_zone)
        self.speed = speed_hours_per_second
        self.stats = SimStats()
        self.clinic_id = practice.clinic.clinic_id
        self._timeline: list[tuple[datetime, int, Happening]] = []
        self._order = itertools.count()
        for happening in practice.timeline:
            self._push(happening)
        self._booked: list[BookedAppointment] = []
        self._http = http or httpx.AsyncClient(
            trust_env=False,
            timeout=30.0,
            headers={"Authorization": f"Bearer {endpoints.token}"},
        )
        self._phones = Phones(practice, self._http, endpoints.messenger, self.stats)
        self.staff = Staff(
            self._http, endpoints.escalation, self.clinic_id, self.zone, practice.seed, self.stats
        )
        self._feed = feed or EhrFeed(
            endpoints.ingest,
            endpoints.api_key,
            endpoints.mllp_host,
            endpoints.mllp_port,
            practice.clinic,
            practice.by_id,
        )
        self.on_tick: Callable[[datetime, SimStats], None] | None = None

    @property
    def phones(self) -> Phones:
        return self._phones

    # --- the calendar's callback ------------------------------------------------------------

    def booked(self, appointment: BookedAppointment) -> None:
        """The practice's scheduling API took a booking; the EHR records it on the next tick."""
        self._booked.append(appointment)

    # --- the loop ---------------------------------------------------------------------------

    async def now(self) -> datetime:
        return (await current_time(self.engine))[0]

    async def run(self, until: datetime | None = None) -> None:
        """Tick until ``until`` (simulated), or forever; cancel the task to stop."""
        now = await self.now()
        await self._send_history(now)
        await self.settler.settle(now, timeout_s=120.0)
        while until is None or now < until:
            started = time.monotonic()
            target = await self._next_moment(now, until)
            jump = target - now
            now = await advance_clock(self.engine, jump)
            # Every service learns the new "now" by NOTIFY; a record sent before that arrives
            # would be handled at the old time, and two runs of one seed would drift apart.
            await asyncio.sleep(CLOCK_PROPAGATION_S)
            await self.tick(now)
            pace = jump.total_seconds() / 3600 / self.speed
            await asyncio.sleep(max(0.0, pace - (time.monotonic() - started)))
        # What the last tick started is finished before anyone reads the results.
        await self.settler.settle(now, timeout_s=60.0)

    async def _next_moment(self, now: datetime, until: datetime | None) -> datetime:
        """Straight to the next moment anything happens: a record the EHR writes, a patient's
        reply, a timer of the stack's (a step to send, a sweep), never more than max_step."""
        moments = [now + self.max_step]
        if until is not None:
            moments.append(until)
        if self._timeline:
            moments.append(self._timeline[0][0])
        if self._phones.next_reply_at is not None:
            moments.append(self._phones.next_reply_at)
        timer = await next_timer(self.engine, now)
        if timer is not None:
            moments.append(timer)
        local_hour = now.astimezone(self.zone).hour
        step = DAY_STEP if local_hour in DAY_HOURS else NIGHT_STEP
        return max(now + step, min(moments))

    async def tick(self, now: datetime) -> None:
        self._record_bookings(now)
        acted = await self._send_due(now)
        await self._phones.read()
        acted |= await self._phones.send_replies(now)
        acted |= await self.staff.work(now)
        if not await self.settler.settle(now, acted=acted):
            self.stats.busy_ticks += 1
        await self._phones.read()  # what the replies just triggered, answered next tick
        self.stats.ticks += 1
        if self.on_tick is not None:
            self.on_tick(now, self.stats)

    async def close(self) -> None:
        await self._feed.close()
        await self._http.aclose()

    # --- the EHR ----------------------------------------------------------------------------

    def _push(self, happening: Happening) -> None:
        heapq.heappush(self._timeline, (happening.at, next(self._order), happening))

    async def _send_history(self, now: datetime, chunk: int = 2000) -> None:
        """The EHR's past, in chunks so the live view can say how far it is."""
        history = self._pop_due(now)
        for first in range(0, len(history), chunk):
            await self._feed_records(history[first : first + chunk])
            self.stats.history = (min(first + chunk, len(history)), len(history))
            if self.on_tick is not None:
                self.on_tick(now, self.stats)

    def _pop_due(self, now: datetime) -> list[Happening]:
        due: list[Happening] = []
        while self._timeline and self._timeline[0][0] <= now:
            due.append(heapq.heappop(self._timeline)[2])
        return due

    async def _feed_records(self, due: list[Happening]) -> None:
        report = await self._feed.send(due)
        self.stats.records_sent += report.accepted + report.duplicates
        self.stats.records_refused += report.refused
        if report.refused:
            log.warning("the EHR feed had %d record(s) refused: %s", report.refused, report.reasons)

    async def _send_due(self, now: datetime) -> bool:
        """Send what the EHR wrote by ``now``; whether there was anything."""
        due = self._pop_due(now)
        if not due:
            return False
        await self._feed_records(due)
        return True

    def _record_bookings(self, now: datetime) -> None:
        """A booking made by text becomes an appointment in the EHR, then a visit (or not)."""
        booked, self._booked = self._booked, []
        clinic = self.practice.clinic
        for b in booked:
            service = _booked_service(clinic, b)
            appointment = AppointmentRecord(
                appointment_id=b.appointment_id,
                patient_id=b.patient_id,
                service_code=service.code,
                provider_id=b.provider_id,
                location_id=b.location_id,
                start=b.start,
                minutes=service.minutes,
                status=AppointmentStatus.booked,
                version=1,
            )
            self.stats.bookings += 1
            self._push(Happening(now, appointment, via="hl7"))
            outcome = attends(
                self.practice.seed, self.practice.patient(b.patient_id), b.appointment_id
            )
            at = (
                b.start
                if outcome != AppointmentStatus.cancelled
                else max(now, b.start - timedelta(days=1))
            )
            changed = replace(appointment, status=outcome, version=2)
            self._push(Happening(at, changed, via="hl7"))
            if outcome == AppointmentStatus.fulfilled:
                visit = visit_for(changed, clinic, self.practice.seed)
                self._push(Happening(visit.end, visit))


def _booked_service(clinic: Clinic, booked: BookedAppointment) -> Service:
    """The service the slot was offered for (the calendar knows it), else the line's first."""
    if booked.service_code:
        return clinic.service(booked.service_code)
    return next(s for s in clinic.catalogue if s.service_line == booked.service_line)
