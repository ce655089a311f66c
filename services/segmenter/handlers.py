"""Segmenter shell: load the batch's patients, decide, save and stage — one transaction.

Three ways in:
- EHR events (and resolutions of the service-recovery cases the segmenter raised), in batches;
- the ``sweep`` timers: one at every (minute-bucketed) moment when time alone changes a
  membership, plus a periodic safety net; each wakes the background sweeper, which runs the
  set-based SQL sweep (sweep.py);
- the ``reevaluate`` timer: after a clinic's parameters change, its patients are re-evaluated
  by the rules in chunks.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmenter import domain, repository
from services.segmenter.domain import PatientState
from services.segmenter.repository import SCHEMA, SWEEP_TIMER, StateCache, clinic_of
from services.segmenter.settings import SegmenterSettings
from services.segmenter.sweep import Sweeper
from shared.consumer import BatchHandler, Delivery, HandlerFailed
from shared.events import Envelope, new_event
from shared.events.escalations import EscalationResolved
from shared.runtime import Runtime
from shared.timers import Timer, TimerHandler

REEVALUATE_TIMER = "reevaluate"
PERIODIC = "periodic"


def _relevant(state: PatientState, delivery: Delivery) -> bool:
    payload = delivery.envelope.payload
    # Escalations of other kinds (the messenger's) are none of the segmenter's business.
    return not isinstance(payload, EscalationResolved) or payload.escalation_id in state.raised


def _with_origin(before: PatientState, after: PatientState, cause: Delivery) -> PatientState:
    """Mark the memberships this batch changed with the event that caused the change."""
    old = before.memberships
    changed = {
        k: m for k, m in after.memberships.items() if old.get(k) is not m and old.get(k) != m
    }
    if not changed:
        return after
    event = cause.envelope
    origin = {
        "headers": dict(cause.trace_headers),
        "correlation_id": str(event.correlation_id or event.event_id),
        "causation_id": str(event.event_id),
    }
    memberships = {**after.memberships}
    for key, m in changed.items():
        memberships[key] = replace(m, origin=origin)
    return PatientState(
        after.patient_key, after.journey, memberships, after.raised, after.recovery_hold
    )


def state_cache(runtime: Runtime, settings: SegmenterSettings) -> StateCache:
    """One cache per process, shared by the consumer and the timers."""
    cache: StateCache = runtime.extras.setdefault(
        "segmenter.cache", StateCache(settings.revisit_segmenter_state_cache)
    )
    return cache


def ehr_event_handler(runtime: Runtime, settings: SegmenterSettings) -> BatchHandler:
    cache = state_cache(runtime, settings)

    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        by_patient: dict[str, list[Delivery]] = {}
        for d in deliveries:
            by_patient.setdefault(d.envelope.patient_key, []).append(d)
        before = await repository.load_states(session, by_patient, cache=cache)
        params = await repository.load_params(session, {clinic_of(k) for k in by_patient})
        now = runtime.clock.now()
        after: dict[str, PatientState] = {}
        staged: list[tuple[Envelope[Any], Mapping[str, str]]] = []
        for key, batch in by_patient.items():
            state = before[key]
            journey, cause = state.journey, batch[-1]
            for d in batch:
                if _relevant(state, d):
                    journey, changed = journey.apply(d.envelope)
                    cause = d if changed else cause
            try:
                new, out = domain.evaluate(
                    state.with_journey(journey), now, params[clinic_of(key)][0]
                )
            except (ValidationError, ValueError) as exc:
                raise HandlerFailed(f"segmenter could not evaluate: {type(exc).__name__}") from None
            after[key] = _with_origin(state, new, cause)
            staged += [
                (cause.envelope.caused(p, occurred_at=now), cause.trace_headers) for p in out
            ]
        await runtime.outbox.stage_batch(session, staged)
        # Patients handled here are stamped with their clinic's current parameter version, so a
        # re-evaluation after a parameter change skips them.
        await repository.save_states(session, before, after, _versions(params), cache=cache)

    return handle


def _versions(params: Mapping[str, tuple[Any, int]]) -> dict[str, int]:
    return {clinic: version for clinic, (_, version) in params.items()}


def sweeper(runtime: Runtime, settings: SegmenterSettings) -> Sweeper:
    """One sweeper per process (started by the start hook, woken by the sweep timers)."""
    found: Sweeper = runtime.extras.setdefault(
        "segmenter.sweeper",
        Sweeper(
            runtime.sessions,
            runtime.clock,
            chunk=settings.revisit_segmenter_sweep_chunk,
            workers=settings.revisit_segmenter_sweep_workers,
        ),
    )
    return found


def sweep_timer_handler(runtime: Runtime, settings: SegmenterSettings) -> TimerHandler:
    interval = timedelta(minutes=settings.revisit_segmenter_sweep_interval_minutes)

    async def fire(session: AsyncSession, timers: Sequence[Timer]) -> None:
        sweeper(runtime, settings).wake()
        if any(t.key == PERIODIC for t in timers):
            await runtime.timers.schedule(
                session, SWEEP_TIMER, PERIODIC, runtime.clock.now() + interval
            )

    return fire


def reevaluate_timer_handler(runtime: Runtime, settings: SegmenterSettings) -> TimerHandler:
    chunk = settings.revisit_segmenter_reevaluate_chunk
    cache = state_cache(runtime, settings)

    async def fire(session: AsyncSession, timers: Sequence[Timer]) -> None:
        now = runtime.clock.now()
        for timer in timers:
            clinic = timer.key
            params, version = (await repository.load_params(session, [clinic]))[clinic]
            keys = list(
                (
                    await session.execute(
                        text(
                            f"SELECT patient_key FROM {SCHEMA}.patients WHERE clinic_id = :c "
                            "AND params_version <> :v LIMIT :n FOR UPDATE SKIP LOCKED"
                        ),
                        {"c": clinic, "v": version, "n": chunk},
                    )
                ).scalars()
            )
            before = await repository.load_states(session, keys, cache=cache)
            after = {}
            staged: list[Envelope[Any]] = []
            for key, state in before.items():
                after[key], out = domain.evaluate(state, now, params)
                staged += [
                    new_event(p, clinic_id=clinic, patient_key=key, occurred_at=now) for p in out
                ]
            await runtime.outbox.stage(session, staged)
            await repository.save_states(session, before, after, {clinic: version}, cache=cache)
            if len(keys) >= chunk:
                await runtime.timers.schedule(session, REEVALUATE_TIMER, clinic, now)

    return fire


def tune_gc(settings: SegmenterSettings) -> None:
    """The state cache holds many long-lived objects and a batch allocates hundreds of thousands
    of short-lived ones; at Python's default threshold (700) the collector ran every few hundred
    allocations and cost a quarter to a third of the CPU per event."""
    if settings.revisit_segmenter_gc_gen0:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(settings.revisit_segmenter_gc_gen0, gen1, gen2)


def start_hook(settings: SegmenterSettings) -> Callable[[Runtime], Awaitable[None]]:
    async def start(runtime: Runtime) -> None:
        """Tune the collector, start the sweeper, sweep once to catch up after a stop."""
        tune_gc(settings)
        runtime.loops.add("sweeper", sweeper(runtime, settings).loop)
        await sweep_now(runtime)

    return start


async def stop(runtime: Runtime) -> None:
    """The sweeper is one of the runtime's supervised loops: it stops with them (a sweep in
    progress rolls back; it is redone later)."""


async def sweep_now(runtime: Runtime) -> None:
    """Schedule the periodic sweep for now (it reschedules itself)."""
    async with runtime.sessions() as session, session.begin():
        await runtime.timers.schedule(session, SWEEP_TIMER, PERIODIC, runtime.clock.now())
