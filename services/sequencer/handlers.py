"""Sequencer shell: eligibility in, sequences and step timers out, one transaction each."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.sequencer import domain, repository
from shared.consumer import BatchHandler, Delivery
from shared.events import new_event
from shared.events.eligibility import PatientBecameEligible, PatientLeftSegment
from shared.runtime import Runtime
from shared.timers import Timer, TimerHandler

STEP_TIMER = "step"


async def _apply(
    runtime: Runtime,
    session: AsyncSession,
    decision: domain.Decision,
    *,
    clinic_id: str,
    patient_key: str,
    headers: dict[str, str] | None,
) -> None:
    if decision.sequence is not None:
        await repository.save(session, decision.sequence)
    for key, due in decision.schedule:
        await runtime.timers.schedule(
            session,
            STEP_TIMER,
            key,
            due,
            patient_key=patient_key,
            payload={"clinic_id": clinic_id, "trace": headers or {}},
        )
    for key in decision.cancel:
        await runtime.timers.cancel(session, STEP_TIMER, key)
    now = runtime.clock.now()
    events = [
        new_event(p, clinic_id=clinic_id, patient_key=patient_key, occurred_at=now)
        for p in decision.events
    ]
    await runtime.outbox.stage(session, events, headers=headers)


def eligibility_handler(runtime: Runtime) -> BatchHandler:
    zone = ZoneInfo(runtime.settings.revisit_default_time_zone)

    async def handle(session: AsyncSession, deliveries: Seq[Delivery]) -> None:
        for d in deliveries:
            event, payload = d.envelope, d.envelope.payload
            active = await repository.active_for(session, event.patient_key)
            if isinstance(payload, PatientBecameEligible):
                decision = domain.on_eligible(
                    active, payload, event.patient_key, runtime.clock.now(), zone
                )
            elif isinstance(payload, PatientLeftSegment):
                decision = domain.on_left(active, payload)
            else:
                continue
            await _apply(
                runtime,
                session,
                decision,
                clinic_id=event.clinic_id,
                patient_key=event.patient_key,
                headers=d.trace_headers,
            )

    return handle


def step_timer_handler(runtime: Runtime) -> TimerHandler:
    async def fire(session: AsyncSession, timers: Seq[Timer]) -> None:
        for timer in timers:
            sequence_id, _, step = timer.key.rpartition(":")
            seq = await repository.by_id(session, sequence_id)
            if seq is None:
                continue
            decision = domain.on_step_due(seq, int(step), timer.due_at)
            await _apply(
                runtime,
                session,
                decision,
                clinic_id=str(timer.payload["clinic_id"]),
                patient_key=seq.patient_key,
                headers=_trace_of(timer),
            )

    return fire


def _trace_of(timer: Timer) -> dict[str, str] | None:
    trace = timer.payload.get("trace")
    return dict(trace) if isinstance(trace, dict) else None
