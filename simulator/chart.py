"""One patient's chart as the practice writes it: bookings, their outcomes, visits, questions.

A ``Chart`` is the pen the journeys in ``simulator.journeys`` write with. It keeps the EHR's
habits in one place: every status change of an appointment is a new version, a visit happens
at a fulfilled appointment and bills the catalogue price, an ordinary appointment is sometimes
cancelled or missed and then rebooked, and nothing is written after the simulation's horizon.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from random import Random
from zoneinfo import ZoneInfo

from simulator.catalogue import providers_for
from simulator.model import (
    AppointmentRecord,
    AppointmentStatus,
    Charge,
    Clinic,
    EhrRecord,
    FollowUp,
    Happening,
    Patient,
    Provider,
    Recommendation,
    SeriesPlan,
    VisitRecord,
)

# An ordinary appointment that is cancelled or missed (and then rebooked). With the journeys'
# own cancellations this puts the practice's non-attendance near 19%, inside the 15-25% that
# US dermatology practices report.
MISS_RATE = 0.22
NOSHOW_SHARE = 0.35  # of the misses; the rest are cancellations
PRACTICE_CANCELS = 0.08  # of the cancellations: the practice moved it (provider out, say)
_FIRST_SLOT = 8 * 60  # clinic hours, local: 08:00 ...
_SLOTS = 32  # ... to the last 15-minute slot at 15:45


def visit_id_for(appointment_id: str) -> str:
    """A visit is named after its appointment ("A-000123-04" -> "V-000123-04"): unique for free."""
    return "V-" + appointment_id.removeprefix("A-")


def visit_record(
    appointment: AppointmentRecord,
    clinic: Clinic,
    *,
    follow_up: FollowUp | None = None,
    recommendation: Recommendation | None = None,
    plan: SeriesPlan | None = None,
) -> VisitRecord:
    """The encounter of a fulfilled appointment, billed at the catalogue price."""
    service = clinic.service(appointment.service_code)
    return VisitRecord(
        visit_id=visit_id_for(appointment.appointment_id),
        patient_id=appointment.patient_id,
        appointment_id=appointment.appointment_id,
        provider_id=appointment.provider_id,
        location_id=appointment.location_id,
        start=appointment.start,
        end=appointment.start + timedelta(minutes=appointment.minutes),
        charges=(Charge(service.code, service.cpt, service.price_cents),),
        follow_up=follow_up,
        recommendation=recommendation,
        plan=plan,
    )


@dataclass
class Series:
    """A treatment series in progress; each session's visit re-sends the plan with its progress."""

    plan_id: str
    service_code: str
    sessions_planned: int
    interval_days: int
    done_visit_ids: list[str] = field(default_factory=list)
    done_dates: list[date] = field(default_factory=list)

    def after_session(self, visit_id: str, on: date) -> SeriesPlan:
        self.done_visit_ids.append(visit_id)
        self.done_dates.append(on)
        finished = len(self.done_visit_ids) >= self.sessions_planned
        return SeriesPlan(
            plan_id=self.plan_id,
            service_code=self.service_code,
            sessions_planned=self.sessions_planned,
            interval_days=self.interval_days,
            done_visit_ids=tuple(self.done_visit_ids),
            done_dates=tuple(self.done_dates),
            status="completed" if finished else "active",
        )


@dataclass
class Chart:
    patient: Patient
    clinic: Clinic
    rng: Random
    start: datetime  # the simulated "now"
    history_start: date  # routine history (repeat visits) goes back no further
    end: datetime  # start + horizon: nothing is written after it
    misses_future: bool = True  # False: keeps every appointment after the start
    happenings: list[Happening] = field(default_factory=list)
    _counters: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _zone: ZoneInfo | None = field(default=None, init=False, repr=False)

    # --- days and times ---------------------------------------------------------------------

    def day(self, offset: int) -> date:
        """The calendar day ``offset`` days from the start (negative: in the history)."""
        return self.start.date() + timedelta(days=offset)

    def slot(self, day: date) -> datetime:
        """A 15-minute appointment slot on ``day`` (the next weekday if it is a weekend), UTC."""
        while day.weekday() >= 5:
            day += timedelta(days=1)
        minutes = _FIRST_SLOT + 15 * self.rng.randrange(_SLOTS)
        return self._local(day, minutes)

    def any_time(self, day: date) -> datetime:
        """When a patient does something at home (a portal message): 07:00 to 22:00 local."""
        return self._local(day, 7 * 60 + self.rng.randrange(15 * 60))

    def _local(self, day: date, minutes: int) -> datetime:
        if self._zone is None:
            self._zone = ZoneInfo(self.clinic.time_zone)
        local = datetime.combine(day, time(), tzinfo=self._zone) + timedelta(minutes=minutes)
        return local.astimezone(self.start.tzinfo)

    # --- records ----------------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        """Readable and unique in the practice: the prefix, the patient's number, a counter."""
        count = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = count
        return f"{prefix}-{self.patient.patient_id.removeprefix('P-')}-{count:02d}"

    def write(self, at: datetime, record: EhrRecord) -> None:
        if at <= self.end:
            via = "hl7" if isinstance(record, AppointmentRecord) else "fhir"
            self.happenings.append(Happening(at, record, via))

    def book(self, code: str, start: datetime, booked_at: datetime) -> AppointmentRecord:
        provider = self._provider(code)
        appointment = AppointmentRecord(
            appointment_id=self.new_id("A"),
            patient_id=self.patient.patient_id,
            service_code=code,
            provider_id=provider.provider_id,
            location_id=provider.location_id,
            start=start,
            minutes=self.clinic.service(code).minutes,
            status=AppointmentStatus.booked,
            version=1,
        )
        self.write(min(booked_at, start - timedelta(hours=1)), appointment)
        return appointment

    def change(
        self,
        appointment: AppointmentRecord,
        status: AppointmentStatus,
        at: datetime,
        cancelled_by: str | None = None,
    ) -> AppointmentRecord:
        changed = replace(
            appointment, status=status, version=appointment.version + 1, cancelled_by=cancelled_by
        )
        self.write(at, changed)
        return changed

    def booking_time(self, start: datetime) -> datetime:
        """When the patient called to book: two to six weeks ahead, not before the history."""
        booked = start - timedelta(days=self.rng.randint(14, 42), minutes=self.rng.randrange(480))
        floor = datetime.combine(self.history_start, time(), tzinfo=start.tzinfo)
        return max(booked, min(floor, start - timedelta(days=1)))

    def miss(
        self, code: str, start: datetime, booked_at: datetime, *, noshow: bool
    ) -> tuple[AppointmentRecord, datetime]:
        """An appointment the patient did not keep: returns it and when the EHR learnt so."""
        appointment = self.book(code, start, booked_at)
        if noshow:
            at = start + timedelta(minutes=20)
            return self.change(appointment, AppointmentStatus.noshow, at), at
        lead = timedelta(hours=self.rng.randint(2, 120))
        at = max(start - lead, booked_at + timedelta(hours=1))
        by = "practice" if self.rng.random() < PRACTICE_CANCELS else "patient"
        return self.change(appointment, AppointmentStatus.cancelled, at, by), at

    def attend(
        self,
        code: str,
        day: date,
        *,
        booked_at: datetime | None = None,
        follow_up: FollowUp | None = None,
        recommendation: Recommendation | None = None,
        series: Series | None = None,
    ) -> VisitRecord:
        """A visit on ``day``; an ordinary one may first be missed once and rebooked for it."""
        start = self.slot(day)
        booked_at = booked_at or self.booking_time(start)
        missed_day = day - timedelta(days=self.rng.randint(3, 10))
        if (
            self.rng.random() < MISS_RATE
            and missed_day >= self.history_start
            and (self.misses_future or start <= self.start)
        ):
            noshow = self.rng.random() < NOSHOW_SHARE
            missed_start = self.slot(missed_day)
            if missed_start > booked_at + timedelta(days=1):
                _, known = self.miss(code, missed_start, booked_at, noshow=noshow)
                booked_at = known + timedelta(minutes=self.rng.randint(30, 90))
        appointment = self.book(code, start, booked_at)
        kept = self.change(appointment, AppointmentStatus.fulfilled, start)
        plan = None
        if series is not None:
            plan = series.after_session(visit_id_for(appointment.appointment_id), start.date())
        visit = visit_record(
            kept, self.clinic, follow_up=follow_up, recommendation=recommendation, plan=plan
        )
        self.write(visit.end, visit)
        return visit

    def _provider(self, code: str) -> Provider:
        usual = self.patient.provider_id
        able = providers_for(self.clinic, code)
        for provider in able:
            if provider.provider_id == usual:
                return provider
        nearby = [p for p in able if p.location_id == self.patient.home_location_id]
        return (nearby or list(able))[0]
