"""Sequencer shell: consumed events and fired timers in, one transaction per batch.

One subscription reads eligibility, replies, message outcomes and escalations (one consumer-group
join at start-up) and dispatches on the payload type. Step and close timers carry the clinic and
the trace headers of the event that started the sequence, so its trace continues through them.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.sequencer.batch import Batch
from services.sequencer.domain import lifecycle, pilots, reactions
from services.sequencer.domain.model import CLOSE_TIMER, STEP_TIMER, sequence_id_for
from services.sequencer.domain.pilots import Verdict
from services.sequencer.domain.rules import Rules
from shared.consumer import BatchHandler, Delivery
from shared.events import Payload, eligibility, escalations, messages
from shared.events.eligibility import PatientBecameEligible, PatientLeftSegment
from shared.runtime import Runtime
from shared.timers import Timer, TimerHandler

__all__ = ["CLOSE_TIMER", "CONSUMED", "STEP_TIMER", "outreach_handler", "timer_handler"]

REPLIES: tuple[type[Payload], ...] = tuple(messages.REPLY_PAYLOADS)
MESSAGES: tuple[type[Payload], ...] = (
    messages.MessageSent,
    messages.MessageFailed,
    messages.MessageBlocked,
)
ESCALATIONS: tuple[type[Payload], ...] = (
    escalations.EscalationRaised,
    escalations.EscalationResolved,
)
CONSUMED = frozenset(
    cls.event_type for cls in (*eligibility.PAYLOADS, *REPLIES, *MESSAGES, *ESCALATIONS)
)


def outreach_handler(runtime: Runtime, base: Rules) -> BatchHandler:
    async def handle(session: AsyncSession, deliveries: Seq[Delivery]) -> None:
        batch = Batch(runtime, session, base)
        ids = [_sequence_named(d) for d in deliveries]
        keys = [d.envelope.patient_key for d in deliveries]
        await batch.load(keys, [i for i in ids if i])
        if any(isinstance(d.envelope.payload, PatientBecameEligible) for d in deliveries):
            await batch.load_pilots({d.envelope.clinic_id for d in deliveries}, keys)
        for d in deliveries:
            await _one(batch, runtime, d)
        await batch.flush()

    return handle


async def _one(batch: Batch, runtime: Runtime, d: Delivery) -> None:
    env, payload = d.envelope, d.envelope.payload
    pk, now = env.patient_key, runtime.clock.now()
    ctx = batch.context(env.clinic_id, now)
    patient, active = batch.patient(pk), batch.active_of(pk)
    if isinstance(payload, PatientBecameEligible):
        existing = batch.sequence(sequence_id_for(pk, payload.eligibility_id), pk)
        pilot = None if existing else batch.enrol(pk, payload, now)
        if isinstance(pilot, Verdict):  # held by a pilot
            out = pilots.hold(patient, active, payload, ctx)
        else:
            out = lifecycle.on_eligible(patient, active, payload, ctx, pilot, existing)
    elif isinstance(payload, PatientLeftSegment):
        out = lifecycle.on_left(patient, active, payload, ctx)
    elif isinstance(payload, REPLIES):
        named = batch.sequence(getattr(payload, "sequence_id", None), pk)
        out = reactions.on_reply(patient, named or active, payload, ctx)
    elif isinstance(payload, MESSAGES):
        named = batch.sequence(getattr(payload, "sequence_id", None), pk)
        out = reactions.on_message(patient, named, payload, ctx, env.occurred_at)
    elif isinstance(payload, ESCALATIONS):
        out = reactions.on_escalation(patient, active, payload, ctx)
    else:
        return
    batch.apply(
        out, clinic_id=env.clinic_id, patient_key=pk, now=now, cause=env, headers=d.trace_headers
    )


def timer_handler(runtime: Runtime, base: Rules) -> TimerHandler:
    """Step timers ("<sequence_id>:<step>") and close timers ("<sequence_id>")."""

    async def fire(session: AsyncSession, timers: Seq[Timer]) -> None:
        batch = Batch(runtime, session, base)
        parsed = [(t, *_parse(t)) for t in timers]
        await batch.load((), [sid for _, sid, _ in parsed])
        now = runtime.clock.now()
        for timer, sid, step in parsed:
            seq = batch.by_id.get(sid)
            if seq is None:
                continue
            ctx = batch.context(seq.clinic_id, now)
            patient = batch.patient(seq.patient_key)
            if step is None:
                out = lifecycle.on_close_due(patient, seq, ctx)
            else:
                out = lifecycle.on_step_due(patient, seq, step, ctx)
            batch.apply(
                out,
                clinic_id=seq.clinic_id,
                patient_key=seq.patient_key,
                now=now,
                headers=_trace_of(timer),
                correlation_id=seq.correlation_id,
            )
        await batch.flush()

    return fire


def _sequence_named(d: Delivery) -> str | None:
    """The sequence an event is about (an eligibility: the one it would open)."""
    payload = d.envelope.payload
    if isinstance(payload, PatientBecameEligible):
        return sequence_id_for(d.envelope.patient_key, payload.eligibility_id)
    named = getattr(payload, "sequence_id", None)
    return named if isinstance(named, str) else None


def _parse(timer: Timer) -> tuple[str, int | None]:
    if timer.kind == STEP_TIMER:
        sid, _, step = timer.key.rpartition(":")
        return sid, int(step)
    return timer.key, None


def _trace_of(timer: Timer) -> dict[str, str] | None:
    trace: Any = timer.payload.get("trace")
    return {str(k): str(v) for k, v in trace.items()} if isinstance(trace, dict) else None
