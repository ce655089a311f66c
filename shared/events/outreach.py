"""Outreach sequences and the commands that send their steps.

Topics: ``outreach.sequences.v1`` (the sequencer's record of each sequence's life, read by
metrics) and ``outreach.commands.v1`` (what the sequencer asks the messenger to do). The
messenger re-checks consent, opt-out, quiet hours and caps at send time whatever a command says,
with the clinic's outreach policy the command carries (``shared.outreach_policy``).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, model_validator

from shared.events.common import (
    Channel,
    ClinicalUrgency,
    Id,
    Instant,
    Key,
    Purpose,
    Segment,
    SegmentKind,
    ServiceLine,
    StateCode,
    Step,
    TimeZoneName,
)
from shared.events.eligibility import Documented
from shared.events.envelope import Payload, register, upcaster
from shared.events.pilot import PilotPlan
from shared.outreach_policy import DEFAULT_POLICY, OutreachPolicy


class StopReason(StrEnum):
    """Why a sequence ended before running all its steps."""

    booked = "booked"  # the patient booked (through us or not)
    completed = "completed"  # the care the sequence chased took place (e.g. a walk-in visit)
    left_segment = "left_segment"  # the segmenter withdrew the eligibility
    declined = "declined"  # the patient said no
    no_longer_needed = "no_longer_needed"  # the patient says the care is done or unnecessary
    opted_out = "opted_out"
    wrong_number = "wrong_number"
    no_contact = "no_contact"  # no usable, consented contact on any channel
    undeliverable = "undeliverable"  # repeated permanent delivery failures
    escalated = "escalated"  # a person took over the conversation
    deceased = "deceased"
    expired = "expired"  # the due window closed before the next step could go
    superseded = "superseded"  # a newer sequence for the same patient and need replaced it
    manual = "manual"  # staff stopped it from the ops API


class Arm(StrEnum):
    """Pilot arm: holdout sequences are recorded but send nothing, for comparison."""

    outreach = "outreach"
    holdout = "holdout"


class Tone(StrEnum):
    """The voice of a step, set by the workflow (the practice's playbook)."""

    clinical = "clinical"  # surveillance, reviews: plain and factual
    supportive = "supportive"  # cancellations, concerns, service recovery
    friendly = "friendly"  # cosmetic maintenance and other elective care


# --- outreach.sequences.v1 --------------------------------------------------------------------


@register("SequenceStarted", version=1)
class SequenceStarted(Payload):
    """Emitted when the sequencer opens a sequence for an eligibility (holdouts included)."""

    sequence_id: Id
    eligibility_id: Id
    segment: Segment
    kind: SegmentKind
    service_line: ServiceLine
    workflow_key: Key
    purpose: Purpose
    steps_planned: Annotated[int, Field(ge=0, le=50)]  # 0 for a holdout
    pilot_id: Id | None = None
    arm: Arm = Arm.outreach
    pilot_plan: PilotPlan | None = None  # the pilot's cohort and dates, when pilot_id is set

    @model_validator(mode="after")
    def _holdouts_send_nothing(self) -> SequenceStarted:
        if self.arm is Arm.holdout and self.steps_planned != 0:
            raise ValueError("a holdout sequence plans no steps")
        if self.pilot_plan is not None and self.pilot_id is None:
            raise ValueError("pilot_plan needs pilot_id")
        return self


@register("StepScheduled", version=1)
class StepScheduled(Payload):
    """Emitted when a step gets (or, after a snooze, changes) its send time."""

    sequence_id: Id
    step: Step
    channel: Channel
    template_key: Key
    scheduled_for: Instant
    expires_at: Instant

    @model_validator(mode="after")
    def _expires_after_schedule(self) -> StepScheduled:
        if self.expires_at <= self.scheduled_for:
            raise ValueError("expires_at must be after scheduled_for")
        return self


@register("SequenceStopped", version=1)
class SequenceStopped(Payload):
    """Emitted when a sequence ends early; pending sends are cancelled alongside it."""

    sequence_id: Id
    reason: StopReason
    steps_sent: Annotated[int, Field(ge=0, le=50)]


@register("SequenceCompleted", version=1)
class SequenceCompleted(Payload):
    """Emitted when a sequence has run every step (or a holdout its window) with no outcome."""

    sequence_id: Id
    steps_sent: Annotated[int, Field(ge=0, le=50)]


# --- outreach.commands.v1 ---------------------------------------------------------------------


class _Command(Payload):
    """What every version of SendStep says about the step itself."""

    sequence_id: Id
    step: Step
    workflow_key: Key
    template_key: Key
    channel: Channel
    fallback_channel: Channel | None = None
    tone: Tone = Tone.supportive
    purpose: Purpose
    clinical_urgency: ClinicalUrgency
    segment: Segment
    service_line: ServiceLine
    provider_id: Id | None = None  # for the booking link
    location_id: Id | None = None
    not_before: Instant
    expires_at: Instant
    idempotency_key: Annotated[str, Field(max_length=200)] = ""

    @model_validator(mode="before")
    @classmethod
    def _derive_idempotency_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("idempotency_key"):
            return {**data, "idempotency_key": f"{data.get('sequence_id')}:{data.get('step')}"}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> _Command:
        if self.idempotency_key != f"{self.sequence_id}:{self.step}":
            raise ValueError("idempotency_key must be '<sequence_id>:<step>'")
        if self.expires_at <= self.not_before:
            raise ValueError("expires_at must be after not_before")
        if self.fallback_channel is not None and self.fallback_channel == self.channel:
            raise ValueError("fallback_channel must differ from channel")
        return self


@register("SendStep", version=1)
class SendStepV1(_Command):
    """Version 1: a due date without its source, and no policy (read through the upcaster)."""

    due_on: date | None = None


@register("SendStep", version=2)
class SendStep(_Command):
    """Emitted when a step is due: the messenger should send it, or report why it did not.

    ``idempotency_key`` is always ``"<sequence_id>:<step>"``; it is filled in when omitted and
    refused when it disagrees, so a redelivered command can never become a second message.

    ``documented`` is what the eligibility documented (the kind of source, the day it was
    recorded, the due date); ``overdue`` says, on the day the step was commanded in the
    patient's zone, whether that due date has passed (None when there is none). A message never
    states a fact these do not carry.

    ``policy`` is the clinic's outreach policy and ``time_zone`` / ``home_state`` the zone
    and state the sequencer planned the step in: the messenger checks the send with the same
    functions (shared.outreach_policy), so it never sends what the sequencer would not have.
    """

    documented: Documented | None = None  # None only for commands first written as version 1
    overdue: bool | None = None
    time_zone: TimeZoneName | None = None
    home_state: StateCode | None = None
    policy: OutreachPolicy = DEFAULT_POLICY

    @model_validator(mode="after")
    def _overdue_needs_a_due_date(self) -> SendStep:
        has_due = self.documented is not None and self.documented.due_on is not None
        if (self.overdue is not None) != has_due:
            raise ValueError("overdue is given exactly when documented.due_on is")
        return self


@upcaster("SendStep", from_version=1)
def _send_step_v1_to_v2(body: dict[str, Any]) -> dict[str, Any]:
    # A bare due date says nothing of where it came from: it is dropped rather than guessed at,
    # so a message that needs it is refused. The policy is the default one.
    return {k: v for k, v in body.items() if k != "due_on"}


@register("CancelPendingSends", version=1)
class CancelPendingSends(Payload):
    """Emitted when a sequence stops: the messenger drops any of its steps not yet sent."""

    sequence_id: Id
    reason: StopReason


SEQUENCE_PAYLOADS: tuple[type[Payload], ...] = (
    SequenceStarted,
    StepScheduled,
    SequenceStopped,
    SequenceCompleted,
)
COMMAND_PAYLOADS: tuple[type[Payload], ...] = (SendStep, CancelPendingSends)
