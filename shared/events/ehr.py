"""What the EHR recorded, as ingest normalises it (topic ``ehr.events.v1``).

Every payload carries ``source``: the source system, the record's id there and the record's
own version/timestamp, so the segmenter can refuse a stale update that arrives after a newer one.

PHI: only PatientUpserted carries contact details. No payload carries a diagnosis, a date of
birth or a message body. Where the EHR holds text the practice wrote (a follow-up reason, a
cancellation note) it travels as ``StaffOnlyText``: for staff screens, never for templates.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints, model_validator

from shared.events.common import (
    Channel,
    ClinicalUrgency,
    Contact,
    Days,
    EhrSource,
    Id,
    Initiator,
    Instant,
    Language,
    Purpose,
    RecordIdentifier,
    ServiceCode,
    ServiceLine,
    ServicePerformed,
    StaffOnlyText,
    StateCode,
    TimeZoneName,
)
from shared.events.envelope import Payload, register, upcaster


class EhrPayload(Payload):
    """Base of every ``ehr.events`` payload (not registered itself)."""

    source: EhrSource


# --- patients ---------------------------------------------------------------------------------


class _Patient(EhrPayload):
    """The fields every version of PatientUpserted has."""

    # Templates greet by given name; nothing else of the name is needed.
    given_name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    contacts: tuple[Contact, ...] = Field(default=(), max_length=20)
    preferred_language: Language | None = None
    time_zone: TimeZoneName | None = None  # for quiet hours; None means the clinic's zone
    deceased: bool = False
    active: bool = True  # False when the record is inactivated or merged away


@register("PatientUpserted", version=1)
class PatientUpsertedV1(_Patient):
    """Version 1 (no record identifiers, no home state), kept so old events are still read."""


@register("PatientUpserted", version=2)
class PatientUpsertedV2(_Patient):
    """Version 2: record identifiers, no home state (read through the upcaster)."""

    identifiers: tuple[RecordIdentifier, ...] = Field(default=(), max_length=10)


@register("PatientUpserted", version=3)
class PatientUpserted(_Patient):
    """Emitted when the EHR creates or changes a patient's demographics or contact details.

    ``identifiers`` are the patient's record numbers as the EHR sent them (HL7 PID-3, FHIR
    Patient.identifier): what finds the same patient in the EHR's FHIR API when booking.
    ``home_state`` is the US state of the patient's home address: some states allow
    messages in fewer hours than the practice does, and that state's hours apply.
    """

    identifiers: tuple[RecordIdentifier, ...] = Field(default=(), max_length=10)
    home_state: StateCode | None = None


@upcaster("PatientUpserted", from_version=1)
def _patient_v1_to_v2(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "identifiers": []}


@upcaster("PatientUpserted", from_version=2)
def _patient_v2_to_v3(body: dict[str, Any]) -> dict[str, Any]:
    return dict(body)  # the state was not sent: unknown


class ConsentStatus(StrEnum):
    granted = "granted"
    revoked = "revoked"


@register("ConsentChanged", version=1)
class ConsentChanged(EhrPayload):
    """Emitted when the EHR records a communication consent being given or withdrawn."""

    purpose: Purpose
    channel: Channel | None  # None: every channel
    status: ConsentStatus


# --- appointments -------------------------------------------------------------------------------


class AppointmentPayload(EhrPayload):
    """Facts every appointment event carries (not registered itself)."""

    appointment_id: Id
    start: Instant
    service_line: ServiceLine
    provider_id: Id | None  # required but nullable: HL7 feeds sometimes omit the resource
    location_id: Id | None
    duration_minutes: Annotated[int, Field(ge=5, le=720)] | None = None
    treatment_plan_id: Id | None = None  # when the EHR links the booking to a plan session


@register("AppointmentBooked", version=1)
class AppointmentBooked(AppointmentPayload):
    """Emitted when an appointment is booked in the EHR (by anyone, through any channel)."""


@register("AppointmentRescheduled", version=1)
class AppointmentRescheduled(AppointmentPayload):
    """Emitted when a booked appointment moves to a new start (``start`` is the new one)."""

    previous_start: Instant
    rescheduled_by: Initiator = Initiator.unknown


class CancellationReason(StrEnum):
    """The EHR's cancellation reason, normalised by ingest."""

    patient_request = "patient_request"
    schedule_conflict = "schedule_conflict"
    illness = "illness"
    cost = "cost"
    transport = "transport"
    weather = "weather"
    feeling_better = "feeling_better"
    provider_unavailable = "provider_unavailable"
    practice_rescheduled = "practice_rescheduled"
    entered_in_error = "entered_in_error"  # not a real cancellation: never a reason to reach out
    other = "other"
    unknown = "unknown"


@register("AppointmentCancelled", version=1)
class AppointmentCancelled(AppointmentPayload):
    """Emitted when a booked appointment is cancelled in the EHR."""

    cancelled_by: Initiator
    reason_code: CancellationReason = CancellationReason.unknown
    # Staff-only: the note the scheduler typed. Templates never use it.
    reason_text: StaffOnlyText | None = None


@register("AppointmentNoShow", version=1)
class AppointmentNoShow(AppointmentPayload):
    """Emitted when the EHR marks an appointment as a no-show."""


@register("AppointmentKept", version=1)
class AppointmentKept(AppointmentPayload):
    """Emitted when the patient arrives (FHIR arrived/checked-in/fulfilled, HL7 A04/S14 arrival).

    It closes a reactivation as soon as the patient is in the building; VisitCompleted may only
    follow hours or days later, when the charges are posted.
    """

    arrived_at: Instant | None = None


# --- visits and what they recommended -----------------------------------------------------------


@register("VisitCompleted", version=1)
class VisitCompleted(EhrPayload):
    """Emitted when a visit (encounter) is finished in the EHR, with the services performed."""

    visit_id: Id
    appointment_id: Id | None = None  # walk-ins have none
    completed_at: Instant
    provider_id: Id | None
    location_id: Id | None
    # Empty when the encounter closes before charges are posted; a later upsert fills it.
    services: tuple[ServicePerformed, ...] = Field(default=(), max_length=100)


@register("FollowUpRecommended", version=1)
class FollowUpRecommended(EhrPayload):
    """Emitted when a visit's plan recommends the patient return (by a date or after an interval).

    ``recurring`` marks a standing review of a chronic condition (e.g. every 6 months on a
    systemic treatment): the review comes due again ``interval_days`` after each visit.
    """

    follow_up_id: Id
    visit_id: Id | None  # None when the plan was written outside a visit (e.g. a result review)
    recommended_on: date
    service_line: ServiceLine
    due_on: date | None = None
    interval_days: Days | None = None
    recurring: bool = False
    urgency: ClinicalUrgency = ClinicalUrgency.routine  # as documented; Revisit never raises it
    provider_id: Id | None = None
    # Staff-only: the plan's own words. Templates never use it; they use service_line.
    reason_text: StaffOnlyText | None = None

    @model_validator(mode="after")
    def _has_a_due_date(self) -> FollowUpRecommended:
        if self.due_on is None and self.interval_days is None:
            raise ValueError("a follow-up needs due_on or interval_days")
        if self.recurring and self.interval_days is None:
            raise ValueError("a recurring review needs interval_days")
        if self.due_on is not None and self.due_on < self.recommended_on:
            raise ValueError("due_on is before recommended_on")
        return self


class PlanStatus(StrEnum):
    active = "active"
    on_hold = "on_hold"
    completed = "completed"
    cancelled = "cancelled"


class _Plan(EhrPayload):
    plan_id: Id
    service_line: ServiceLine
    sessions_planned: Annotated[int, Field(ge=1, le=100)]
    sessions_completed: Annotated[int, Field(ge=0, le=100)]
    interval_days: Days
    status: PlanStatus = PlanStatus.active
    started_on: date | None = None
    last_session_on: date | None = None
    provider_id: Id | None = None

    @model_validator(mode="after")
    def _progress_within_plan(self) -> _Plan:
        if self.sessions_completed > self.sessions_planned:
            raise ValueError("sessions_completed exceeds sessions_planned")
        if self.sessions_completed > 0 and self.last_session_on is None:
            raise ValueError("last_session_on is required once a session is completed")
        return self


@register("TreatmentPlanUpdated", version=1)
class TreatmentPlanUpdatedV1(_Plan):
    """Version 1: no documented purpose (read through the upcaster)."""


@register("TreatmentPlanUpdated", version=2)
class TreatmentPlanUpdated(_Plan):
    """Emitted when a series plan (N sessions at an interval) is created or its progress changes.

    ``purpose`` is the plan's documented purpose when the EHR records one: a laser or peel
    series can be medical care (``care``) or elective (``marketing``), and outreach for it
    follows the plan, not the service line's usual purpose. None: not documented.
    """

    purpose: Purpose | None = None


@upcaster("TreatmentPlanUpdated", from_version=1)
def _plan_v1_to_v2(body: dict[str, Any]) -> dict[str, Any]:
    return dict(body)  # not documented


@register("TreatmentRecommended", version=1)
class TreatmentRecommended(EhrPayload):
    """Emitted when a consultation recommends a treatment the patient has not yet started."""

    recommendation_id: Id
    visit_id: Id  # the consultation
    recommended_on: date
    service_line: ServiceLine
    treatment: ServiceCode | None = None
    start_within_days: Days | None = None
    sessions_estimated: Annotated[int, Field(ge=1, le=100)] | None = None
    urgency: ClinicalUrgency = ClinicalUrgency.routine
    provider_id: Id | None = None


# --- what patients told the practice --------------------------------------------------------------


class QuestionChannel(StrEnum):
    portal = "portal"
    phone = "phone"
    email = "email"
    in_person = "in_person"
    other = "other"


@register("PatientQuestionReceived", version=1)
class PatientQuestionReceived(EhrPayload):
    """Emitted when the EHR records a patient's question (or updates its triage).

    The question's text stays in the EHR; only its triage outcome travels.
    """

    question_id: Id
    received_via: QuestionChannel
    service_line: ServiceLine | None = None
    answered: bool = False
    review_recommended: bool = False  # a clinician asked to see the patient about it
    review_within_days: Days | None = None
    provider_id: Id | None = None

    @model_validator(mode="after")
    def _window_only_with_review(self) -> PatientQuestionReceived:
        if self.review_within_days is not None and not self.review_recommended:
            raise ValueError("review_within_days given but no review is recommended")
        return self


class Sentiment(StrEnum):
    poor = "poor"
    neutral = "neutral"
    good = "good"


class FeedbackTopic(StrEnum):
    wait_time = "wait_time"
    staff_manner = "staff_manner"
    communication = "communication"
    outcome = "outcome"
    cost = "cost"
    scheduling = "scheduling"
    facilities = "facilities"
    other = "other"


@register("ExperienceFeedbackRecorded", version=1)
class ExperienceFeedbackRecorded(EhrPayload):
    """Emitted when the practice records a patient's feedback on their experience.

    A ``poor`` sentiment sends the patient to service recovery (a person) before any rebooking
    message. Comments stay in the EHR.
    """

    feedback_id: Id
    visit_id: Id | None = None
    sentiment: Sentiment
    score: Annotated[int, Field(ge=0, le=10)] | None = None  # e.g. likelihood to recommend
    topics: tuple[FeedbackTopic, ...] = Field(default=(), max_length=len(FeedbackTopic))
    provider_id: Id | None = None


PAYLOADS: tuple[type[Payload], ...] = (
    PatientUpserted,
    ConsentChanged,
    AppointmentBooked,
    AppointmentRescheduled,
    AppointmentCancelled,
    AppointmentNoShow,
    AppointmentKept,
    VisitCompleted,
    FollowUpRecommended,
    TreatmentPlanUpdated,
    TreatmentRecommended,
    PatientQuestionReceived,
    ExperienceFeedbackRecorded,
)
