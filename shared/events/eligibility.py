"""Patients entering and leaving recall segments (topic ``recall.eligibility.v1``).

The segmenter emits these; the sequencer turns an eligibility into an outreach sequence and
stops it when the patient leaves. ``eligibility_id`` ties a PatientLeftSegment to the
PatientBecameEligible it ends.

Version 2 of PatientBecameEligible carries what the record documented, as facts a message can
state (``documented``: the kind of source, the day it was recorded, the due date), and the state
of the patient's address (for that state's allowed hours). Version 1 events are read with
neither: a message that needs those facts is then refused, never filled with a guess.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import model_validator

from shared.events.common import (
    ClinicalUrgency,
    Id,
    Initiator,
    Instant,
    PlainReason,
    Segment,
    SegmentKind,
    ServiceLine,
    SourceRecord,
    StateCode,
    TimeZoneName,
    Value,
)
from shared.events.ehr import CancellationReason
from shared.events.envelope import Payload, register, upcaster


class RebookedBy(Value):
    """Which bookings meet the need, by the segmenter's rule (``shared/rebooking.py``)."""

    any_service: bool = False
    service_lines: tuple[ServiceLine, ...] = ()

    @model_validator(mode="after")
    def _one_way(self) -> RebookedBy:
        if self.any_service == bool(self.service_lines):
            raise ValueError("give either any_service or service_lines")
        return self

    @classmethod
    def of(cls, lines: frozenset[ServiceLine] | None) -> RebookedBy:
        if lines is None:
            return cls(any_service=True)
        return cls(service_lines=tuple(sorted(lines)))

    @property
    def lines(self) -> frozenset[ServiceLine] | None:
        return None if self.any_service else frozenset(self.service_lines)


class MissedAppointment(Value):
    """How the appointment behind a cancellation need was missed (codes only, never the
    scheduler's note): for pilots that take, say, only patient-initiated cancellations."""

    no_show: bool = False
    cancelled_by: Initiator = Initiator.unknown  # unknown for a no-show
    reason: CancellationReason = CancellationReason.unknown

    @property
    def reason_code(self) -> str:
        """The cancellation reason, or ``no_show``: the values a cohort filter names."""
        return "no_show" if self.no_show else self.reason.value


class ReasonSource(StrEnum):
    """Where the documented need came from, as a message says it to the patient."""

    visit = "visit"  # a visit's plan, or the last visit ("at your visit on 9 May")
    treatment_plan = "treatment_plan"  # a plan written outside a visit ("your plan of 12 May")
    surveillance_plan = "surveillance_plan"  # a standing review plan (recurring)
    series = "series"  # a treatment series in progress (recorded: its last session)
    consultation = "consultation"  # a consultation's recommendation
    portal_question = "portal_question"  # the patient wrote (portal or e-mail)
    phone_question = "phone_question"  # the patient called
    question = "question"  # the patient asked in person or otherwise
    cancellation = "cancellation"  # the patient cancelled (recorded: the appointment's time)
    practice_cancellation = "practice_cancellation"  # the practice cancelled it
    no_show = "no_show"  # the patient missed it


class Documented(Value):
    """The facts behind an eligibility that a message may state, each from the record.

    ``recorded_on`` is the day the source documents (the visit, the plan, the question, the
    cancelled appointment); ``recorded_at`` the moment, when the record has one, so that a
    message can show it in the practice's own time zone. ``due_on`` is the documented due date
    of the care (None when the plan gives none, e.g. a lapsed patient).
    """

    source: ReasonSource
    recorded_on: date
    recorded_at: Instant | None = None
    due_on: date | None = None


class _Eligible(Payload):
    """The fields every version of PatientBecameEligible has."""

    eligibility_id: Id
    segment: Segment
    kind: SegmentKind
    service_line: ServiceLine
    # Plain words built from the record's structured fields, for staff and audit; it names the
    # care (service line, interval, visit date), never a diagnosis.
    reason: PlainReason
    source_record: SourceRecord
    opens_on: date | None = None
    closes_on: date | None = None
    due_at: Instant | None = None
    clinical_urgency: ClinicalUrgency = ClinicalUrgency.routine
    needs_marketing_consent: bool
    provider_id: Id | None = None  # the provider who documented the plan; booking prefers them
    location_id: Id | None = None
    # The patient's own IANA zone (PatientUpserted.time_zone), for quiet hours; None lets the
    # sequencer fall back to the clinic's configured zone.
    time_zone: TimeZoneName | None = None
    # Facts a pilot's cohort filters read; None on eligibilities recorded before they existed.
    missed: MissedAppointment | None = None  # cancelled_not_rescheduled only
    rebooked_by: RebookedBy | None = None

    @model_validator(mode="after")
    def _one_kind_of_window(self) -> _Eligible:
        if (self.opens_on is None) == (self.due_at is None):
            raise ValueError("give exactly one of opens_on (a window) or due_at (a moment)")
        if self.closes_on is not None:
            if self.opens_on is None:
                raise ValueError("closes_on needs opens_on")
            if self.closes_on < self.opens_on:
                raise ValueError("closes_on is before opens_on")
        return self


@register("PatientBecameEligible", version=1)
class PatientBecameEligibleV1(_Eligible):
    """Version 1: no documented facts, no address state (read through the upcaster)."""


@register("PatientBecameEligible", version=2)
class PatientBecameEligible(_Eligible):
    """Emitted when a documented, unfinished or recurring care need puts a patient in a segment.

    The due window is either a span of days (``opens_on`` .. ``closes_on``, for recalls) or a
    moment (``due_at``, e.g. two hours after a cancellation). ``clinical_urgency`` is copied from
    the documented plan and may be lowered, never raised (``ClinicalUrgency.capped_at``).
    """

    documented: Documented | None = None  # None only for events first written as version 1
    home_state: StateCode | None = None  # the state of the patient's address


@upcaster("PatientBecameEligible", from_version=1)
def _eligible_v1_to_v2(body: dict[str, Any]) -> dict[str, Any]:
    # Nothing can be documented after the fact: the new fields stay empty.
    return dict(body)


class LeftReason(StrEnum):
    booked = "booked"  # an appointment that satisfies the need is on the books
    visit_completed = "visit_completed"  # the care happened
    plan_completed = "plan_completed"
    plan_cancelled = "plan_cancelled"  # the clinician stopped or changed the plan
    window_closed = "window_closed"  # too late for this outreach to make sense
    superseded = "superseded"  # a newer eligibility for the same need replaced this one
    record_corrected = "record_corrected"  # the source record was withdrawn or entered in error
    deceased = "deceased"
    patient_inactive = "patient_inactive"  # record inactivated or merged
    service_recovery = "service_recovery"  # poor experience recorded: a person goes first


@register("PatientLeftSegment", version=1)
class PatientLeftSegment(Payload):
    """Emitted when the need behind an eligibility is met, withdrawn or no longer applies."""

    eligibility_id: Id
    segment: Segment
    kind: SegmentKind
    service_line: ServiceLine
    reason: LeftReason
    source_record: SourceRecord | None = None  # the record that ended it, e.g. the appointment


PAYLOADS: tuple[type[Payload], ...] = (PatientBecameEligible, PatientLeftSegment)
