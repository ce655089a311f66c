"""How a sequence reacts to what patients answer, what the messenger reports and what people do.

- Replies: "no" and "no longer needed" stop; "later" snoozes by the asked-for time (bounded);
  asking to book or raising a concern holds the next step while people act; opt-outs are
  remembered per channel and scope (care ``all`` / ``marketing``).
- Messages: a step deferred at send time (quiet hours, caps) is planned again at its
  ``retry_after``; a permanent refusal stops or skips; repeated permanent failures stop.
- Escalations: an open case pauses the patient's outreach; resolved with ``resume_outreach`` it
  resumes, otherwise the person has taken over and the sequence stops.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from services.sequencer.domain.model import (
    Activity,
    Outcome,
    Patient,
    Send,
    Sequence,
    StepRecord,
    StepStatus,
    TimerOp,
    evolve,
)
from services.sequencer.domain.rules import snooze_until
from services.sequencer.domain.steps import (
    Context,
    any_channel_left,
    arm,
    disarm,
    move,
    rearm,
    stop,
)
from services.sequencer.domain.workflows import SERVICE_RECOVERY
from shared.events import Payload
from shared.events.common import Channel
from shared.events.escalations import (
    CaseType,
    EscalationRaised,
    EscalationResolved,
)
from shared.events.escalations import (
    Outcome as Resolution,
)
from shared.events.messages import (
    BlockReason,
    BookingRequested,
    ConsentScope,
    MessageBlocked,
    MessageFailed,
    MessageSent,
    OptedIn,
    OptedOut,
    ReplyIntent,
    ReplyReceived,
    SnoozeRequested,
)
from shared.events.outreach import StopReason

REPLY_STOPS = {
    ReplyIntent.decline: StopReason.declined,
    ReplyIntent.no_longer_needed: StopReason.no_longer_needed,
    ReplyIntent.wrong_number: StopReason.wrong_number,
}
CONCERNS = frozenset({ReplyIntent.clinical_concern, ReplyIntent.red_flag, ReplyIntent.question})
BOOKING = frozenset({ReplyIntent.book, ReplyIntent.choose_slot})
BLOCK_STOPS = {
    BlockReason.no_consent: StopReason.no_contact,
    BlockReason.no_contact: StopReason.no_contact,
    BlockReason.wrong_number: StopReason.wrong_number,
    BlockReason.deceased: StopReason.deceased,
    BlockReason.patient_inactive: StopReason.left_segment,
}
DEFERRED = frozenset(
    {BlockReason.quiet_hours, BlockReason.frequency_cap, BlockReason.escalation_open}
)


def opted_in(opt_outs: frozenset[str], event: OptedIn) -> frozenset[str]:
    """Opt-outs left after an opt-in: an opt-in to ``all`` also lifts ``marketing``; an opt-in on
    one channel splits an every-channel opt-out into the other channel's."""
    scopes = {"all", "marketing"} if event.scope is ConsentScope.all else {event.scope.value}
    channels = [event.channel.value] if event.channel else [c.value for c in Channel]
    kept = set(opt_outs)
    for scope in scopes:
        if f"*:{scope}" in kept and event.channel is not None:
            kept.discard(f"*:{scope}")
            kept |= {f"{c.value}:{scope}" for c in Channel if c is not event.channel}
        for c in [*channels, "*"] if event.channel is None else channels:
            kept.discard(f"{c}:{scope}")
    return frozenset(kept)


def _snooze(out: Outcome, seq: Sequence | None, until_date: date | None, ctx: Context) -> None:
    patient = out.patient
    zone = ctx.rules.tz((seq.time_zone if seq else None) or patient.time_zone)
    state = (seq.home_state if seq else None) or patient.home_state
    until = snooze_until(until_date, ctx.now, zone, ctx.rules, state)
    if seq is None or not seq.is_active:
        return
    out.activity.append(Activity(seq.sequence_id, "snoozed", ctx.now))
    if seq.next_step is None:
        # The last step has gone: no more steps than the workflow defines. Nothing else is
        # sent before the asked-for date; the sequence closes on its own timer.
        if patient.rest_until is None or patient.rest_until < until:
            out.set_patient(evolve(patient, rest_until=until))
        return
    seq = out.keep(evolve(seq, snoozed_until=until))
    move(out, seq, until, ctx, "snoozed at the patient's request")


def on_reply(patient: Patient, seq: Sequence | None, payload: Payload, ctx: Context) -> Outcome:
    """``seq`` is the sequence the reply is about (named, else the patient's active one)."""
    out = Outcome(patient)
    live = seq if seq is not None and seq.is_active else None
    if isinstance(payload, ReplyReceived):
        if seq is not None:
            out.activity.append(Activity(seq.sequence_id, f"reply:{payload.intent.value}", ctx.now))
            if payload.barrier is not None:
                out.activity.append(
                    Activity(seq.sequence_id, f"barrier:{payload.barrier.value}", ctx.now)
                )
        if live is None:
            return out
        if payload.intent in REPLY_STOPS:
            stop(out, live, REPLY_STOPS[payload.intent], ctx)
        elif payload.intent is ReplyIntent.later:
            _snooze(out, live, payload.snooze_until, ctx)
        elif payload.intent in CONCERNS:
            hold = ctx.now + timedelta(hours=ctx.rules.concern_hold_hours)
            move(out, live, hold, ctx, "held: the patient asked something; people answer first")
        elif payload.intent in BOOKING:
            hold = ctx.now + timedelta(days=ctx.rules.booking_hold_days)
            move(out, live, hold, ctx, "held: the patient is booking")
    elif isinstance(payload, OptedOut | OptedIn):
        entry = f"{payload.channel.value if payload.channel else '*'}:{payload.scope.value}"
        if isinstance(payload, OptedOut):
            out.set_patient(evolve(patient, opt_outs=patient.opt_outs | {entry}))
            if seq is not None:
                out.activity.append(Activity(seq.sequence_id, "opted_out", ctx.now))
            # A patient who says STOP in the middle of a sequence has asked us to stop: the
            # sequence ends, it does not carry on by e-mail. Later needs may still use a
            # channel the patient has not left. A marketing opt-out ends only marketing.
            if live is not None and (
                payload.scope is ConsentScope.all
                or live.needs_marketing_consent
                or not any_channel_left(out.patient, live, ctx)
            ):
                stop(out, live, StopReason.opted_out, ctx)
        else:
            out.set_patient(evolve(patient, opt_outs=opted_in(patient.opt_outs, payload)))
    elif isinstance(payload, BookingRequested):
        if seq is not None:
            out.activity.append(Activity(seq.sequence_id, "booking_requested", ctx.now))
        if live is not None:
            hold = ctx.now + timedelta(days=ctx.rules.booking_hold_days)
            move(out, live, hold, ctx, "held: a booking was requested; the EHR confirms it")
    elif isinstance(payload, SnoozeRequested):
        _snooze(out, live, payload.until, ctx)
    return out


def on_message(
    patient: Patient,
    seq: Sequence | None,
    payload: Payload,
    ctx: Context,
    occurred_at: datetime | None = None,
) -> Outcome:
    """``occurred_at`` is when the messenger sent it: the caps count that moment, not the moment
    the report happens to be read."""
    out = Outcome(patient)
    if seq is None:
        return out
    if isinstance(payload, MessageSent):
        at = min(occurred_at or ctx.now, ctx.now)
        out.set_patient(patient.remember(Send(seq.sequence_id, payload.step, at), ctx.now))
        out.steps.append(StepRecord(seq.sequence_id, payload.step, StepStatus.sent, ctx.now))
        out.activity.append(Activity(seq.sequence_id, "message_sent", ctx.now))
    elif isinstance(payload, MessageFailed):
        out.steps.append(
            StepRecord(
                seq.sequence_id,
                payload.step,
                StepStatus.failed,
                ctx.now,
                f"failed: {payload.failure.value}",
            )
        )
        if payload.permanent and payload.fallback_channel is None and seq.is_active:
            seq = out.keep(evolve(seq, failures=seq.failures + 1))
            if seq.failures >= ctx.rules.undeliverable_after:
                stop(out, seq, StopReason.undeliverable, ctx)
    elif isinstance(payload, MessageBlocked):
        _blocked(out, seq, payload, ctx)
    return out


def _blocked(out: Outcome, seq: Sequence, event: MessageBlocked, ctx: Context) -> None:
    reason = event.reason
    # It did not go: it does not count toward the caps.
    out.set_patient(out.patient.forget(seq.sequence_id, event.step))
    latest = seq.is_active and seq.steps_sent == event.step
    if reason in DEFERRED and latest:
        out.steps.append(
            StepRecord(
                seq.sequence_id,
                event.step,
                StepStatus.deferred,
                ctx.now,
                f"deferred at send time: {reason.value}",
            )
        )
        # Take the command back and plan the same step again.
        if seq.next_step is not None:
            seq = disarm(out, seq)
        if seq.closes_at is not None:
            out.timers.append(TimerOp("close", seq.sequence_id, None, seq.sequence_id))
        seq = out.keep(
            evolve(seq, steps_sent=event.step - 1, next_step=None, next_due=None, closes_at=None)
        )
        if reason is BlockReason.escalation_open:
            earliest = ctx.now + timedelta(hours=ctx.rules.concern_hold_hours)
        else:
            earliest = max(event.retry_after or ctx.now, ctx.now)
        arm(out, seq, event.step, earliest, ctx, f"again after {reason.value}")
        return
    out.steps.append(
        StepRecord(
            seq.sequence_id,
            event.step,
            StepStatus.blocked,
            ctx.now,
            f"blocked at send time: {reason.value}",
        )
    )
    if not seq.is_active:
        return
    if reason is BlockReason.opted_out and event.channel is not None:
        out.set_patient(
            evolve(out.patient, opt_outs=out.patient.opt_outs | {f"{event.channel.value}:all"})
        )
        if not any_channel_left(out.patient, seq, ctx):
            stop(out, seq, StopReason.opted_out, ctx)
    elif reason in BLOCK_STOPS:
        stop(out, seq, BLOCK_STOPS[reason], ctx)
    # template_not_approved, expired: that step is skipped; the next one is already planned.


def on_escalation(
    patient: Patient, active: Sequence | None, payload: Payload, ctx: Context
) -> Outcome:
    out = Outcome(patient)
    if isinstance(payload, EscalationRaised):
        cases = {**patient.escalations, payload.escalation_id: payload.case_type.value}
        out.set_patient(evolve(patient, escalations=cases))
        if active is not None:
            out.activity.append(
                Activity(active.sequence_id, f"escalation:{payload.case_type.value}", ctx.now)
            )
            if out.patient.paused_for(active) and active.armed:
                seq = disarm(out, active)
                if seq.next_step is not None:
                    out.steps.append(
                        StepRecord(
                            seq.sequence_id,
                            seq.next_step,
                            StepStatus.scheduled,
                            ctx.now,
                            "waiting: escalation open",
                        )
                    )
    elif isinstance(payload, EscalationResolved):
        case_type = patient.escalations.get(payload.escalation_id)
        if case_type is None:
            return out
        pausing = payload.escalation_id in patient.pausing_cases(active)
        cases = {k: v for k, v in patient.escalations.items() if k != payload.escalation_id}
        out.set_patient(evolve(patient, escalations=cases))
        if active is None:
            return out
        out.activity.append(Activity(active.sequence_id, "escalation_resolved", ctx.now))
        if active.workflow_key == SERVICE_RECOVERY and case_type == CaseType.poor_experience.value:
            stop(out, active, StopReason.escalated, ctx)  # the person has dealt with it
        elif payload.outcome is Resolution.booked:
            stop(out, active, StopReason.booked, ctx)
        elif payload.resume_outreach or not pausing:
            rearm(out, active, ctx, "resumed: escalation resolved")
        else:
            stop(out, active, StopReason.escalated, ctx)
    return out
