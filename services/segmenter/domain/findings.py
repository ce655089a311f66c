"""What a rule finds: a care need with its documented reason, source record and due window.

A rule is a pure function of the journey and the clinic's parameters. Its findings do not depend
on "now": time only decides a finding's status (upcoming until ``surface_at``, then due, then
expired at ``expires_at``), which is why the SQL sweep can move stored findings through time
without re-running the rules.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, ClassVar

from services.segmenter.domain.cached import cached
from services.segmenter.domain.journey import Appointment, Journey, RecordKind, Visit
from services.segmenter.domain.params import ClinicParams
from services.segmenter.domain.words import capital, day_start, span, span_adjective, window, words
from shared.events.common import (
    ClinicalUrgency,
    Purpose,
    Segment,
    SegmentKind,
    ServiceLine,
    SourceRecord,
    SourceRecordKind,
)
from shared.events.eligibility import (
    Documented,
    LeftReason,
    MissedAppointment,
    PatientBecameEligible,
    ReasonSource,
    RebookedBy,
)

REASON_MAX = 200


class Status(StrEnum):
    upcoming = "upcoming"
    due = "due"
    expired = "expired"
    ended = "ended"


@dataclass(frozen=True)
class Ending:
    """Why a need is met or no longer applies, and the record that shows it."""

    reason: LeftReason
    by: SourceRecord | None
    words: str


@dataclass(frozen=True)
class Finding:
    need_id: str
    segment: Segment
    kind: SegmentKind
    service_line: ServiceLine
    source: SourceRecord
    reason: str  # plain words from structured fields only; never staff-only text
    surface_at: datetime
    expires_at: datetime | None
    opens_on: date | None
    closes_on: date | None
    due_at: datetime | None
    urgency: ClinicalUrgency
    needs_marketing_consent: bool
    provider_id: str | None
    location_id: str | None
    ended: Ending | None = None
    time_zone: str | None = None  # the patient's own zone, for the sequencer's quiet hours
    home_state: str | None = None  # the state of the patient's address (its hours apply)
    # What a message may say about the need: the source, the day it was recorded, the due date.
    documented: Documented | None = None
    # A recurring need met for this cycle and already counting towards the next one.
    renewed: Ending | None = None
    # Staff explain output only (may carry StaffOnlyText such as the plan's own words).
    details: tuple[tuple[str, str], ...] = ()
    # What a pilot's cohort filters read: how a cancelled appointment was missed, and which
    # bookings meet the need (the rule metrics shares).
    missed: MissedAppointment | None = None
    rebooked_by: RebookedBy | None = None

    def status(self, now: datetime) -> Status:
        if self.ended is not None:
            return Status.ended
        if self.expires_at is not None and now >= self.expires_at:
            return Status.expired
        return Status.due if now >= self.surface_at else Status.upcoming

    @cached
    def fields(self) -> dict[str, Any]:
        """The PatientBecameEligible payload without its eligibility id (JSON-ready); computed
        once per finding (the dict is shared: never mutate it)."""
        return self.eligible_fields()

    def eligible_fields(self) -> dict[str, Any]:
        """The PatientBecameEligible payload without its eligibility id (JSON-ready)."""
        # Enum members are str: they compare equal to, and encode as, their values.
        return {
            "segment": self.segment,
            "kind": self.kind,
            "service_line": self.service_line,
            "reason": self.reason,
            "source_record": {"kind": self.source.kind, "id": self.source.id},
            "opens_on": self.opens_on.isoformat() if self.opens_on else None,
            "closes_on": self.closes_on.isoformat() if self.closes_on else None,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "clinical_urgency": self.urgency,
            "needs_marketing_consent": self.needs_marketing_consent,
            "provider_id": self.provider_id,
            "location_id": self.location_id,
            "time_zone": self.time_zone,
            "missed": self.missed.model_dump(mode="json") if self.missed else None,
            "rebooked_by": self.rebooked_by.model_dump(mode="json") if self.rebooked_by else None,
            "home_state": self.home_state,
            "documented": self.documented.model_dump(mode="json") if self.documented else None,
        }


def documented(
    source: ReasonSource,
    recorded_on: date,
    *,
    recorded_at: datetime | None = None,
    due_on: date | None = None,
) -> Documented:
    return Documented(
        source=source, recorded_on=recorded_on, recorded_at=recorded_at, due_on=due_on
    )


def eligible_event(fields: dict[str, Any], eligibility_id: str) -> PatientBecameEligible:
    return PatientBecameEligible.model_validate({**fields, "eligibility_id": eligibility_id})


@dataclass(frozen=True)
class RuleResult:
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()  # why nothing (more) qualifies, in plain words


def need_id(
    prefix: str, patient_key: str, segment: Segment, source: SourceRecord, part: str = ""
) -> str:
    """Deterministic: the same patient, segment and source record always give the same id
    (``part`` tells apart two needs from one record, e.g. two services of one visit)."""
    return _need_id(prefix, patient_key, segment.value, source.kind.value, source.id, part)


@lru_cache(maxsize=65536)
def _need_id(prefix: str, patient_key: str, segment: str, kind: str, source: str, part: str) -> str:
    raw = f"{patient_key}|{segment}|{kind}|{source}|{part}"
    return f"{prefix}-{hashlib.sha256(raw.encode()).hexdigest()[:24]}"


# --- what meets a need ----------------------------------------------------------------------


def booking_for(
    journey: Journey,
    lines: frozenset[ServiceLine] | None,
    *,
    after: datetime | None = None,
    after_day: date | None = None,
    exclude: Iterable[str] = (),
) -> Appointment | None:
    """The first active (booked or kept) appointment for ``lines`` (None: any service) that
    starts after the given moment or day."""
    skip = set(exclude)
    for appt in journey.appointments:
        if not appt.active or appt.appointment_id in skip:
            continue
        if lines is not None and appt.service_line not in lines:
            continue
        if after is not None and appt.start < after:
            continue
        if after_day is not None and appt.start.date() <= after_day:
            continue
        return appt
    return None


def visit_for(
    journey: Journey,
    lines: frozenset[ServiceLine] | None,
    *,
    after: datetime | None = None,
    after_day: date | None = None,
    exclude: Iterable[str | None] = (),
) -> Visit | None:
    """The latest completed visit for ``lines`` after the given moment or day."""
    skip = set(exclude)
    found = None
    for visit in journey.visits:
        if visit.visit_id in skip:
            continue
        if lines is not None and not (visit.service_lines & lines):
            continue
        if after is not None and visit.completed_at < after:
            continue
        if after_day is not None and visit.completed_at.date() <= after_day:
            continue
        found = visit
    return found


def met_by(appt: Appointment | None, visit: Visit | None) -> Ending | None:
    """A completed visit meets a need more surely than a booking; either ends it."""
    if visit is not None:
        return Ending(
            LeftReason.visit_completed,
            SourceRecord(kind=SourceRecordKind.visit, id=visit.visit_id),
            f"visit {visit.visit_id} on {visit.completed_at.date()} provided it",
        )
    if appt is not None:
        return Ending(
            LeftReason.visit_completed if appt.status.value == "kept" else LeftReason.booked,
            SourceRecord(kind=SourceRecordKind.appointment, id=appt.appointment_id),
            f"appointment {appt.appointment_id} on {appt.start.date()} "
            f"({words(appt.service_line)}) covers it",
        )
    return None


def other_bookings(
    journey: Journey, lines: frozenset[ServiceLine] | None, after_day: date
) -> str | None:
    """Bookings for other services (a follow-up booked for the wrong service), for staff."""
    if lines is None:
        return None
    wrong = [
        f"{a.appointment_id} ({words(a.service_line)})"
        for a in journey.appointments
        if a.active and a.service_line not in lines and a.start.date() > after_day
    ]
    return ", ".join(wrong) if wrong else None


# --- the rule base --------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """What a rule decides; :meth:`Rule.finding` adds what every finding shares."""

    source: SourceRecord
    service_line: ServiceLine
    reason: str
    surface_at: datetime
    expires_at: datetime | None
    opens_on: date | None = None
    closes_on: date | None = None
    due_at: datetime | None = None
    documented_urgency: ClinicalUrgency = ClinicalUrgency.routine
    provider_id: str | None = None
    location_id: str | None = None
    ended: Ending | None = None
    renewed: Ending | None = None
    part: str = ""
    details: tuple[tuple[str, str], ...] = field(default=())
    missed: MissedAppointment | None = None
    # False when the record named no service and ``service_line`` stands in for one.
    line_documented: bool = True
    documented: Documented | None = None
    # The purpose the plan documents, when it does: it decides over the service line's usual
    # one (a laser series can be medical care).
    purpose: Purpose | None = None


class Rule(ABC):
    """One named segment rule."""

    segment: ClassVar[Segment]
    kind: ClassVar[SegmentKind]
    prefix: ClassVar[str]
    summary: ClassVar[str]
    # The record kinds the rule reads: its result is reused while none of them changed.
    reads: ClassVar[tuple[RecordKind, ...]]

    @abstractmethod
    def evaluate(self, journey: Journey, params: ClinicParams) -> RuleResult: ...

    def gone(self, source: SourceRecord, journey: Journey) -> Ending:
        """Why a need this rule no longer finds at all has ended (its record changed)."""
        return Ending(LeftReason.record_corrected, None, "its source record no longer qualifies")

    def finding(self, journey: Journey, params: ClinicParams, draft: Draft) -> Finding:
        cap = params.general.urgency_cap
        reason = draft.reason if len(draft.reason) <= REASON_MAX else draft.reason[:197] + "..."
        return Finding(
            need_id=need_id(
                self.prefix, journey.patient_key, self.segment, draft.source, draft.part
            ),
            segment=self.segment,
            kind=self.kind,
            service_line=draft.service_line,
            source=draft.source,
            reason=reason,
            surface_at=draft.surface_at,
            expires_at=draft.expires_at,
            opens_on=draft.opens_on,
            closes_on=draft.closes_on,
            due_at=draft.due_at,
            # Copied from the record, possibly lowered by the clinic's cap, never raised.
            urgency=cap.capped_at(draft.documented_urgency),
            needs_marketing_consent=params.needs_marketing(draft.service_line, draft.purpose),
            provider_id=draft.provider_id,
            location_id=draft.location_id,
            time_zone=journey.patient.time_zone if journey.patient else None,
            home_state=journey.patient.home_state if journey.patient else None,
            documented=draft.documented,
            ended=draft.ended,
            renewed=draft.renewed,
            details=draft.details,
            missed=draft.missed,
            rebooked_by=RebookedBy.of(
                params.closing_lines(
                    self.segment, draft.service_line, line_documented=draft.line_documented
                )
            ),
        )


__all__ = [
    "Draft",
    "Ending",
    "Finding",
    "Rule",
    "RuleResult",
    "Status",
    "booking_for",
    "capital",
    "day_start",
    "documented",
    "eligible_event",
    "met_by",
    "need_id",
    "other_bookings",
    "span",
    "span_adjective",
    "visit_for",
    "window",
    "words",
]
