"""The primitives every decision is built from: arm a step, disarm it, stop, complete.

Each takes the :class:`Outcome` being built and returns the changed sequence, recording the
events, timers, step rows and activity the change implies. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.sequencer.domain.model import (
    CLOSE_TIMER,
    STEP_TIMER,
    Activity,
    Outcome,
    Patient,
    Sequence,
    State,
    StepRecord,
    StepStatus,
    TimerOp,
    evolve,
)
from services.sequencer.domain.rules import Rules, plan
from services.sequencer.domain.workflows import Catalogue, Workflow, WorkflowStep
from shared.events.common import Channel
from shared.events.outreach import (
    CancelPendingSends,
    SendStep,
    SequenceCompleted,
    SequenceStopped,
    StepScheduled,
    StopReason,
)
from shared.outreach_policy import rest_after

# Stops after which the patient rests before another sequence may message them.
REST_AFTER = {StopReason.expired: "rest_days"}
LONG_REST_AFTER = frozenset({StopReason.declined, StopReason.no_longer_needed})


@dataclass(frozen=True)
class Context:
    now: datetime
    rules: Rules
    catalogue: Catalogue

    def workflow(self, seq: Sequence) -> Workflow | None:
        return self.catalogue.get(seq.workflow_key)


def state_of(patient: Patient, seq: Sequence) -> str | None:
    """The state of the patient's address, as the sequence or the patient last knew it."""
    return seq.home_state or patient.home_state


def zone_name(patient: Patient, seq: Sequence, ctx: Context) -> str:
    """The zone a step is planned in: the patient's own, else the clinic's."""
    return seq.time_zone or patient.time_zone or ctx.rules.zone


def command_for(
    patient: Patient,
    seq: Sequence,
    step: WorkflowStep,
    channels: tuple[Channel, Channel | None],
    at: datetime,
    ctx: Context,
) -> SendStep:
    """The SendStep for ``step`` at ``at``: what the eligibility documented (with whether its
    due date has passed on that day, in the patient's zone) and the clinic's policy snapshot,
    so the messenger says only what is documented and checks the send as the sequencer did."""
    zone = zone_name(patient, seq, ctx)
    documented = seq.documented
    overdue = None
    if documented is not None and documented.due_on is not None:
        overdue = at.astimezone(ctx.rules.tz(zone)).date() > documented.due_on
    channel, fallback = channels
    return SendStep(
        sequence_id=seq.sequence_id,
        step=step.step,
        workflow_key=seq.workflow_key,
        template_key=step.template_key,
        channel=channel,
        fallback_channel=fallback,
        tone=step.tone,
        purpose=step.purpose_for(seq.needs_marketing_consent),
        clinical_urgency=step.urgency_for(seq.urgency),
        segment=seq.segment,
        service_line=seq.service_line,
        provider_id=seq.provider_id,
        location_id=seq.location_id,
        not_before=at,
        expires_at=at + ctx.rules.step_lifetime,
        documented=documented,
        overdue=overdue,
        time_zone=zone,
        home_state=state_of(patient, seq),
        policy=ctx.rules.policy,
    )


def channels_for(
    patient: Patient, seq: Sequence, step: WorkflowStep
) -> tuple[Channel, Channel | None] | None:
    """The step's channel and fallback the patient has not opted out of; None if neither."""
    purpose = step.purpose_for(seq.needs_marketing_consent)
    usable = [
        c for c in (step.channel, step.fallback) if c is not None and patient.may_use(c, purpose)
    ]
    if not usable:
        return None
    return usable[0], (usable[1] if len(usable) > 1 else None)


def any_channel_left(patient: Patient, seq: Sequence, ctx: Context) -> bool:
    """Whether any step still to come (or the pending one) can reach the patient."""
    wf = ctx.workflow(seq)
    if wf is None:
        return False
    first = seq.next_step or seq.steps_sent + 1
    return any(
        channels_for(patient, seq, wf.step(n)) is not None
        for n in range(first, min(seq.steps_planned, len(wf.steps)) + 1)
    )


def disarm(out: Outcome, seq: Sequence) -> Sequence:
    """Drop the pending step's timer (the step itself stays pending)."""
    if seq.next_step is not None and seq.armed:
        out.timers.append(TimerOp(STEP_TIMER, seq.step_key(seq.next_step), None, seq.sequence_id))
    return out.keep(evolve(seq, armed=False))


def arm(
    out: Outcome,
    seq: Sequence,
    step_no: int,
    earliest: datetime,
    ctx: Context,
    note: str,
) -> Sequence:
    """Make ``step_no`` the pending step, at the first allowed moment from ``earliest``.

    If the patient's outreach is paused the step waits unarmed; it is planned again on resume.
    """
    patient = out.patient
    wf = ctx.workflow(seq)
    assert wf is not None
    wstep = wf.step(step_no)
    zone = ctx.rules.tz(seq.time_zone or patient.time_zone)
    due = plan(
        max(earliest, ctx.now),
        zone,
        ctx.rules,
        patient.send_times(),
        state=state_of(patient, seq),
    )
    paused = patient.paused_for(seq)
    if seq.armed and seq.next_step is not None and seq.next_step != step_no:
        seq = disarm(out, seq)
    seq = evolve(seq, next_step=step_no, next_due=due, armed=not paused)
    out.steps.append(
        StepRecord(
            seq.sequence_id,
            step_no,
            StepStatus.scheduled,
            ctx.now,
            "waiting: outreach paused" if paused else note,
            channel=wstep.channel,
            template_key=wstep.template_key,
            scheduled_for=due,
        )
    )
    if not paused:
        out.timers.append(TimerOp(STEP_TIMER, seq.step_key(step_no), due, seq.sequence_id))
        out.events.append(
            StepScheduled(
                sequence_id=seq.sequence_id,
                step=step_no,
                channel=wstep.channel,
                template_key=wstep.template_key,
                scheduled_for=due,
                expires_at=due + ctx.rules.step_lifetime,
            )
        )
    return out.keep(seq)


def rearm(out: Outcome, seq: Sequence, ctx: Context, note: str) -> Sequence:
    """Plan the pending step again (after a pause lifts), no earlier than it was due."""
    if not seq.is_active or seq.next_step is None or out.patient.paused_for(seq):
        return seq
    earliest = max(ctx.now, seq.next_due or ctx.now)
    return arm(out, seq, seq.next_step, earliest, ctx, note)


def move(out: Outcome, seq: Sequence, earliest: datetime, ctx: Context, note: str) -> Sequence:
    """Push the pending step to no earlier than ``earliest`` (a hold or a snooze)."""
    if not seq.is_active or seq.next_step is None:
        return seq
    target = max(earliest, seq.next_due or earliest)
    if out.patient.paused_for(seq):
        return out.keep(evolve(seq, next_due=target))
    return arm(out, seq, seq.next_step, target, ctx, note)


def schedule_close(out: Outcome, seq: Sequence, at: datetime) -> Sequence:
    out.timers.append(TimerOp(CLOSE_TIMER, seq.sequence_id, at, seq.sequence_id))
    return out.keep(evolve(seq, closes_at=at, next_step=None, next_due=None, armed=False))


def _end(out: Outcome, seq: Sequence, ctx: Context) -> Sequence:
    pending = seq.next_step
    if pending is not None:
        seq = disarm(out, seq)
        out.steps.append(
            StepRecord(seq.sequence_id, pending, StepStatus.cancelled, ctx.now, "sequence ended")
        )
    if seq.closes_at is not None:
        out.timers.append(TimerOp(CLOSE_TIMER, seq.sequence_id, None, seq.sequence_id))
    return evolve(
        seq, next_step=None, next_due=None, armed=False, closes_at=None, closed_at=ctx.now
    )


def _rest(out: Outcome, days: int, ctx: Context) -> None:
    patient: Patient = out.patient
    until = rest_after(days, ctx.now, patient.rest_until)
    if until != patient.rest_until:
        out.set_patient(evolve(patient, rest_until=until))


def stop(out: Outcome, seq: Sequence, reason: StopReason, ctx: Context) -> Sequence:
    """End ``seq`` early: SequenceStopped with the reason, and cancel what has not gone."""
    if not seq.is_active:
        return seq
    seq = evolve(_end(out, seq, ctx), state=State.stopped, stop_reason=reason)
    out.events.append(
        SequenceStopped(sequence_id=seq.sequence_id, reason=reason, steps_sent=seq.steps_sent)
    )
    if not seq.is_holdout:
        out.events.append(CancelPendingSends(sequence_id=seq.sequence_id, reason=reason))
    out.activity.append(Activity(seq.sequence_id, f"stopped:{reason.value}", ctx.now))
    if reason in LONG_REST_AFTER:
        out.set_patient(out.patient.close_reminder(seq.reminder_key))
        _rest(out, ctx.rules.decline_rest_days, ctx)
    elif reason in REST_AFTER:
        _rest(out, ctx.rules.rest_days, ctx)
    return out.keep(seq)


def complete(out: Outcome, seq: Sequence, ctx: Context) -> Sequence:
    """Every step has run (or a holdout's window has passed) with no outcome."""
    if not seq.is_active:
        return seq
    seq = evolve(_end(out, seq, ctx), state=State.completed)
    out.events.append(SequenceCompleted(sequence_id=seq.sequence_id, steps_sent=seq.steps_sent))
    out.activity.append(Activity(seq.sequence_id, "completed", ctx.now))
    wf = ctx.workflow(seq)
    if not seq.is_holdout and wf is not None and seq.steps_sent >= len(wf.steps):
        # Its last step told the patient no more messages would follow about this.
        out.set_patient(out.patient.close_reminder(seq.reminder_key))
    if not seq.is_holdout:
        _rest(out, ctx.rules.rest_days, ctx)
    return out.keep(seq)
