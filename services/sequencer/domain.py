"""Pure rules of the sequencer (walking-skeleton scope: cancellation recovery, step 1).

One active sequence per patient. A step is scheduled for the first allowed moment: not before
the eligibility is due and inside the allowed hours (default 08:00-21:00) of the patient's
local time. The messenger checks again at send time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.events import Payload
from shared.events.common import Channel, ClinicalUrgency, Purpose, Segment, ServiceLine
from shared.events.eligibility import PatientBecameEligible, PatientLeftSegment
from shared.events.outreach import (
    CancelPendingSends,
    SendStep,
    SequenceCompleted,
    SequenceStarted,
    SequenceStopped,
    StepScheduled,
    StopReason,
)

ALLOWED_FROM = time(8, 0)
ALLOWED_UNTIL = time(21, 0)
STEP_LIFETIME = timedelta(hours=24)


@dataclass(frozen=True)
class WorkflowStep:
    template_key: str
    channel: Channel
    delay: timedelta


@dataclass(frozen=True)
class Workflow:
    key: str
    segment: Segment
    purpose: Purpose
    steps: tuple[WorkflowStep, ...]


CANCELLATION_RECOVERY = Workflow(
    key="cancellation_recovery",
    segment=Segment.cancelled_not_rescheduled,
    purpose=Purpose.care,
    steps=(WorkflowStep("cancellation_recovery.1", Channel.sms, timedelta(0)),),
)
WORKFLOWS = {CANCELLATION_RECOVERY.segment: CANCELLATION_RECOVERY}


@dataclass(frozen=True)
class Sequence:
    sequence_id: str
    patient_key: str
    eligibility_id: str
    segment: Segment
    service_line: ServiceLine
    workflow_key: str
    purpose: Purpose
    urgency: ClinicalUrgency
    provider_id: str | None
    location_id: str | None
    steps_planned: int
    steps_sent: int = 0
    state: str = "active"  # active | stopped | completed
    stop_reason: StopReason | None = None

    @property
    def is_active(self) -> bool:
        return self.state == "active"


def sequence_id_for(patient_key: str, eligibility_id: str) -> str:
    digest = hashlib.sha256(f"{patient_key}|{eligibility_id}".encode()).hexdigest()[:20]
    return f"seq-{digest}"


def next_allowed(at: datetime, zone: ZoneInfo) -> datetime:
    """The first moment at or after ``at`` inside the allowed hours of ``zone``."""
    local = at.astimezone(zone)
    if local.time() < ALLOWED_FROM:
        local = local.replace(
            hour=ALLOWED_FROM.hour, minute=ALLOWED_FROM.minute, second=0, microsecond=0
        )
    elif local.time() >= ALLOWED_UNTIL:
        nxt = (local + timedelta(days=1)).date()
        local = datetime.combine(nxt, ALLOWED_FROM, tzinfo=zone)
    return local.astimezone(at.tzinfo)


@dataclass(frozen=True)
class Decision:
    sequence: Sequence | None
    events: list[Payload]
    schedule: list[tuple[str, datetime]]  # (timer key, due) to create
    cancel: list[str]  # timer keys to drop


def on_eligible(
    active: Sequence | None,
    event: PatientBecameEligible,
    patient_key: str,
    now: datetime,
    zone: ZoneInfo,
) -> Decision:
    workflow = WORKFLOWS.get(event.segment)
    if workflow is None or active is not None:
        # One active sequence per patient; other segments arrive with their own issues.
        return Decision(None, [], [], [])
    seq = Sequence(
        sequence_id=sequence_id_for(patient_key, event.eligibility_id),
        patient_key=patient_key,
        eligibility_id=event.eligibility_id,
        segment=event.segment,
        service_line=event.service_line,
        workflow_key=workflow.key,
        purpose=Purpose.marketing if event.needs_marketing_consent else workflow.purpose,
        urgency=event.clinical_urgency,
        provider_id=event.provider_id,
        location_id=event.location_id,
        steps_planned=len(workflow.steps),
    )
    first = workflow.steps[0]
    due = next_allowed(max(event.due_at or now, now) + first.delay, zone)
    return Decision(
        seq,
        [
            SequenceStarted(
                sequence_id=seq.sequence_id,
                eligibility_id=seq.eligibility_id,
                segment=seq.segment,
                kind=event.kind,
                service_line=seq.service_line,
                workflow_key=seq.workflow_key,
                purpose=seq.purpose,
                steps_planned=seq.steps_planned,
            ),
            StepScheduled(
                sequence_id=seq.sequence_id,
                step=1,
                channel=first.channel,
                template_key=first.template_key,
                scheduled_for=due,
                expires_at=due + STEP_LIFETIME,
            ),
        ],
        [(f"{seq.sequence_id}:1", due)],
        [],
    )


def on_step_due(seq: Sequence, step: int, due: datetime) -> Decision:
    if not seq.is_active or step != seq.steps_sent + 1:
        return Decision(None, [], [], [])  # stopped meanwhile, or a step already commanded
    workflow_step = WORKFLOWS[seq.segment].steps[step - 1]
    command = SendStep(
        sequence_id=seq.sequence_id,
        step=step,
        workflow_key=seq.workflow_key,
        template_key=workflow_step.template_key,
        channel=workflow_step.channel,
        purpose=seq.purpose,
        clinical_urgency=seq.urgency,
        segment=seq.segment,
        service_line=seq.service_line,
        provider_id=seq.provider_id,
        location_id=seq.location_id,
        not_before=due,
        expires_at=due + STEP_LIFETIME,
    )
    sent = replace(seq, steps_sent=step)
    events: list[Payload] = [command]
    if step == seq.steps_planned:
        sent = replace(sent, state="completed")
        events.append(SequenceCompleted(sequence_id=seq.sequence_id, steps_sent=step))
    return Decision(sent, events, [], [])


def on_left(seq: Sequence | None, event: PatientLeftSegment) -> Decision:
    if seq is None or not seq.is_active or seq.eligibility_id != event.eligibility_id:
        return Decision(None, [], [], [])
    reason = StopReason.booked if event.reason.value == "booked" else StopReason.left_segment
    stopped = replace(seq, state="stopped", stop_reason=reason)
    return Decision(
        stopped,
        [
            SequenceStopped(sequence_id=seq.sequence_id, reason=reason, steps_sent=seq.steps_sent),
            CancelPendingSends(sequence_id=seq.sequence_id, reason=reason),
        ],
        [],
        [f"{seq.sequence_id}:{n}" for n in range(seq.steps_sent + 1, seq.steps_planned + 1)],
    )
