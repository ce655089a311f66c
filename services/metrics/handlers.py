"""Metrics shell: fold every new event into the read model, in the inbox's transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.metrics.domain import counting, freed_slots
from services.metrics.domain.attribution import derive
from services.metrics.domain.history import RECORDED, record
from services.metrics.repository import counts, histories
from services.metrics.repository import freed_slots as freed_store
from shared.consumer import BatchHandler, Delivery
from shared.events import Envelope

log = logging.getLogger(__name__)


def read_model_handler(window: timedelta) -> BatchHandler:
    """One batch of new events (the inbox already dropped redeliveries) -> the read model."""

    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        events = [d.envelope for d in deliveries]
        await counts.add_counts(session, counting.tally(events))
        await counts.add_send_counts(session, counting.send_tally(events))
        await record_histories(session, [e for e in events if e.type in RECORDED], window)
        await histories.save_plans(session, pilot_plans(events))
        await freed_store.merge(session, freed_slots.fold(events).values())

    return handle


def pilot_plans(events: Sequence[Envelope[Any]]) -> dict[str, tuple[str, str]]:
    """The pilot plans SequenceStarted carry: pilot id -> (clinic, plan JSON)."""
    return {
        e.payload.pilot_id: (e.clinic_id, e.payload.pilot_plan.model_dump_json())
        for e in events
        if e.type == "SequenceStarted" and e.payload.pilot_plan is not None
    }


async def record_histories(
    session: AsyncSession, events: Sequence[Envelope[Any]], window: timedelta
) -> None:
    """Merge events into their patients' histories, then rebuild those patients' rows."""
    if not events:
        return
    found = await histories.lock_histories(session, {e.patient_key: e.clinic_id for e in events})
    for event in events:
        found[event.patient_key] = record(found[event.patient_key], event)
    await histories.save_histories(session, found.values())
    derived = [(h, derive(h, window)) for h in found.values()]
    await histories.replace_derived(session, derived, window.days)


async def rebuild_stale(
    sessions: async_sessionmaker[AsyncSession], window: timedelta, chunk: int = 200
) -> int:
    """Re-derive rows built with another attribution window or older rules; returns patients."""
    rebuilt = 0
    while True:
        async with sessions() as session, session.begin():
            keys = await histories.stale_patients(session, window.days, chunk)
            if not keys:
                break
            found = await histories.load_histories(session, keys)
            derived = [(h, derive(h, window)) for h in found]
            await histories.replace_derived(session, derived, window.days)
            rebuilt += len(found)
    if rebuilt:
        log.info("read model rebuilt", extra={"patients": rebuilt, "window_days": window.days})
    return rebuilt
