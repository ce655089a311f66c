"""What staff may do to a patient's outreach (pause, resume, stop) and to a pilot's holdouts."""

from __future__ import annotations

from services.sequencer.domain.model import (
    Activity,
    Outcome,
    Patient,
    Sequence,
    StepRecord,
    StepStatus,
    evolve,
)
from services.sequencer.domain.steps import Context, complete, disarm, rearm, stop
from shared.events.outreach import StopReason


def pause(patient: Patient, active: Sequence | None, ctx: Context) -> Outcome:
    out = Outcome(patient)
    out.set_patient(evolve(patient, operator_paused=True))
    if active is not None and active.armed:
        seq = disarm(out, active)
        if seq.next_step is not None:
            out.steps.append(
                StepRecord(
                    seq.sequence_id,
                    seq.next_step,
                    StepStatus.scheduled,
                    ctx.now,
                    "waiting: paused by staff",
                )
            )
        out.activity.append(Activity(seq.sequence_id, "paused:staff", ctx.now))
    return out


def resume(patient: Patient, active: Sequence | None, ctx: Context) -> Outcome:
    out = Outcome(patient)
    out.set_patient(evolve(patient, operator_paused=False))
    if active is not None:
        out.activity.append(Activity(active.sequence_id, "resumed:staff", ctx.now))
        rearm(out, active, ctx, "resumed by staff")
    return out


def stop_by_staff(patient: Patient, active: Sequence | None, ctx: Context) -> Outcome:
    out = Outcome(patient)
    if active is not None:
        stop(out, active, StopReason.manual, ctx)
    return out


def close_holdout(patient: Patient, seq: Sequence, ctx: Context) -> Outcome:
    """The pilot closed: its holdout sequences complete now (outreach ones run on)."""
    out = Outcome(patient)
    if seq.is_holdout:
        complete(out, seq, ctx)
    return out
