"""A sequence's life: started by an eligibility, stepped by its timers, ended by a stop or by
running out of steps; and what operators may do to it.

Every function is ``decide(state, event, ctx) -> Outcome``: pure, with "now" in ``ctx``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.sequencer.domain.model import (
    Activity,
    Outcome,
    Patient,
    Send,
    Sequence,
    StepRecord,
    StepStatus,
    evolve,
    reminder_key,
    sequence_id_for,
)
from services.sequencer.domain.rules import add_local, local_moment, plan
from services.sequencer.domain.steps import (
    Context,
    arm,
    channels_for,
    command_for,
    complete,
    schedule_close,
    state_of,
    stop,
)
from services.sequencer.domain.workflows import SERVICE_RECOVERY, Workflow
from shared.events.common import ClinicalUrgency, Purpose
from shared.events.eligibility import LeftReason, PatientBecameEligible, PatientLeftSegment
from shared.events.outreach import Arm, SequenceStarted, StopReason

LEFT_TO_STOP = {
    LeftReason.booked: StopReason.booked,
    LeftReason.visit_completed: StopReason.completed,
    LeftReason.plan_completed: StopReason.completed,
    LeftReason.deceased: StopReason.deceased,
    LeftReason.superseded: StopReason.superseded,
    LeftReason.window_closed: StopReason.expired,
    LeftReason.service_recovery: StopReason.escalated,
}


@dataclass(frozen=True)
class PilotArm:
    """The pilot a new sequence is enrolled in, and the patient's (hash-assigned) arm."""

    pilot_id: str
    arm: Arm
    ends_at: datetime


def _started(seq: Sequence, wf_key: str) -> SequenceStarted:
    return SequenceStarted(
        sequence_id=seq.sequence_id,
        eligibility_id=seq.eligibility_id,
        segment=seq.segment,
        kind=seq.kind,
        service_line=seq.service_line,
        workflow_key=wf_key,
        purpose=seq.purpose,
        steps_planned=seq.steps_planned,
        pilot_id=seq.pilot_id,
        arm=seq.arm,
    )


def _begin(out: Outcome, seq: Sequence, wf: Workflow, earliest: datetime, ctx: Context) -> Sequence:
    out.events.append(_started(seq, wf.key))
    out.activity.append(Activity(seq.sequence_id, f"started:{seq.arm.value}", ctx.now))
    seq = out.keep(seq)
    if seq.is_holdout:
        return seq
    if channels_for(out.patient, seq, wf.step(1)) is None:
        return stop(out, seq, StopReason.opted_out, ctx)
    # A new sequence respects the rest period after the patient's last one.
    rest = out.patient.rest_until
    start = max(earliest, rest) if rest is not None else earliest
    return arm(out, seq, 1, start, ctx, "step 1: " + wf.playbook[1])


def _window_start(event: PatientBecameEligible, zone_name: str, ctx: Context) -> datetime:
    if event.due_at is not None:
        return event.due_at
    assert event.opens_on is not None
    opens = ctx.rules.hours_for(event.home_state).start
    return local_moment(event.opens_on, opens, ctx.rules.tz(zone_name), ctx.now)


def on_eligible(
    patient: Patient,
    active: Sequence | None,
    event: PatientBecameEligible,
    ctx: Context,
    pilot: PilotArm | None = None,
    existing: Sequence | None = None,
) -> Outcome:
    """Open a sequence for the segmenter's newest eligibility (it supersedes the active one:
    the segmenter ranks a patient's needs and keeps exactly one of them open).

    ``existing`` is the sequence already opened for this eligibility, if any: an eligibility
    opens one sequence, ever (the segmenter never reuses an id once it has been left).
    """
    out = Outcome(patient)
    if event.time_zone is not None and event.time_zone != patient.time_zone:
        out.set_patient(evolve(out.patient, time_zone=event.time_zone))
    if event.home_state is not None and event.home_state != patient.home_state:
        out.set_patient(evolve(out.patient, home_state=event.home_state))
    if existing is not None or (
        active is not None and active.eligibility_id == event.eligibility_id
    ):
        return out  # the same need again: its sequence already serves (or served) it
    wf = ctx.catalogue.route(event.segment, event.service_line)
    if wf is None:
        return out
    reminder = reminder_key(event)
    if reminder in patient.closed_reminders:
        # The last step said no more messages would follow about this (or the patient said
        # no): the same need, due the same day, is not chased again.
        return out
    if active is not None:
        stop(out, active, StopReason.superseded, ctx)
    holdout = pilot is not None and pilot.arm is Arm.holdout
    marketing = wf.marketing or event.needs_marketing_consent
    seq = Sequence(
        sequence_id=sequence_id_for(patient.patient_key, event.eligibility_id),
        patient_key=patient.patient_key,
        eligibility_id=event.eligibility_id,
        segment=event.segment,
        kind=event.kind,
        service_line=event.service_line,
        workflow_key=wf.key,
        purpose=Purpose.marketing if marketing else Purpose.care,
        urgency=event.clinical_urgency,
        provider_id=event.provider_id,
        location_id=event.location_id,
        steps_planned=0 if holdout else len(wf.steps),
        started_at=ctx.now,
        needs_marketing_consent=event.needs_marketing_consent,
        reason=event.reason,
        time_zone=event.time_zone or patient.time_zone,
        home_state=event.home_state or patient.home_state,
        documented=event.documented,
        reminder_key=reminder,
        pilot_id=pilot.pilot_id if pilot else None,
        arm=pilot.arm if pilot else Arm.outreach,
    )
    if holdout:
        assert pilot is not None
        seq = _begin(out, seq, wf, ctx.now, ctx)
        schedule_close(out, seq, max(pilot.ends_at, ctx.now))
        return out
    zone = seq.time_zone or ctx.rules.zone
    earliest = add_local(
        max(ctx.now, _window_start(event, zone, ctx)), wf.step(1).delay, ctx.rules.tz(zone)
    )
    _begin(out, seq, wf, earliest, ctx)
    return out


def on_left(
    patient: Patient, active: Sequence | None, event: PatientLeftSegment, ctx: Context
) -> Outcome:
    """The need behind the active sequence was met or withdrawn: stop it, with the reason."""
    out = Outcome(patient)
    if active is None or active.eligibility_id != event.eligibility_id:
        return out
    reason = LEFT_TO_STOP.get(event.reason, StopReason.left_segment)
    if event.reason is LeftReason.service_recovery and active.workflow_key == SERVICE_RECOVERY:
        return out  # already recovering
    stop(out, active, reason, ctx)
    if event.reason is LeftReason.service_recovery:
        _start_recovery(out, active, ctx)
    return out


def _start_recovery(out: Outcome, interrupted: Sequence, ctx: Context) -> None:
    """A poor experience was recorded: a person calls first; these messages only apologise and
    listen, and stop when the case is resolved."""
    wf = ctx.catalogue.get(SERVICE_RECOVERY)
    if wf is None:
        return
    seq = Sequence(
        sequence_id=sequence_id_for(
            interrupted.patient_key, interrupted.eligibility_id, "recovery"
        ),
        patient_key=interrupted.patient_key,
        eligibility_id=interrupted.eligibility_id,
        segment=interrupted.segment,
        kind=interrupted.kind,
        service_line=interrupted.service_line,
        workflow_key=wf.key,
        purpose=Purpose.care,
        urgency=ClinicalUrgency.routine,
        provider_id=interrupted.provider_id,
        location_id=interrupted.location_id,
        steps_planned=len(wf.steps),
        started_at=ctx.now,
        reason="service recovery after a recorded poor experience",
        time_zone=interrupted.time_zone,
        home_state=interrupted.home_state,
        correlation_id=interrupted.correlation_id,
    )
    head_start = timedelta(hours=ctx.rules.recovery_head_start_hours)
    _begin(out, seq, wf, ctx.now + head_start, ctx)


def on_step_due(patient: Patient, seq: Sequence, step: int, ctx: Context) -> Outcome:
    """A step's timer fired: command it if every rule still allows it now, else move it."""
    out = Outcome(patient)
    if not seq.is_active or seq.next_step != step or not seq.armed:
        return out  # stopped, moved or already commanded meanwhile
    if patient.paused_for(seq):
        out.keep(evolve(seq, armed=False))
        return out
    wf = ctx.workflow(seq)
    if wf is None or step > len(wf.steps):
        complete(out, seq, ctx)
        return out
    wstep = wf.step(step)
    chosen = channels_for(patient, seq, wstep)
    if chosen is None:
        stop(out, seq, StopReason.opted_out, ctx)
        return out
    zone = ctx.rules.tz(seq.time_zone or patient.time_zone)
    due = plan(ctx.now, zone, ctx.rules, patient.send_times(), state=state_of(patient, seq))
    if due > ctx.now:
        arm(out, seq, step, due, ctx, "moved: allowed hours or caps")
        return out
    channel, _fallback = chosen
    out.events.append(command_for(patient, seq, wstep, chosen, ctx.now, ctx))
    out.set_patient(patient.remember(Send(seq.sequence_id, step, ctx.now), ctx.now))
    out.steps.append(
        StepRecord(
            seq.sequence_id,
            step,
            StepStatus.commanded,
            ctx.now,
            "",
            channel=channel,
            commanded_at=ctx.now,
        )
    )
    seq = out.keep(evolve(seq, steps_sent=step, armed=False, next_step=None, next_due=None))
    if step < min(seq.steps_planned, len(wf.steps)):
        nxt = wf.step(step + 1)
        arm(
            out,
            seq,
            step + 1,
            add_local(ctx.now, nxt.delay, zone),
            ctx,
            f"step {step + 1}: " + wf.playbook.get(step + 1, ""),
        )
    else:
        schedule_close(out, seq, ctx.now + timedelta(hours=ctx.rules.close_after_hours))
    return out


def on_close_due(patient: Patient, seq: Sequence, ctx: Context) -> Outcome:
    """The time for replies after the last step (or a holdout's pilot window) has passed."""
    out = Outcome(patient)
    if seq.is_active and seq.next_step is None and seq.closes_at is not None:
        complete(out, seq, ctx)
    return out
