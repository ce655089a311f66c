"""Segmenter shell: load the batch's patients' needs, decide per event, save and stage."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.segmenter import domain, repository
from shared.consumer import BatchHandler, Delivery
from shared.runtime import Runtime


def ehr_event_handler(runtime: Runtime) -> BatchHandler:
    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        needs = await repository.load_needs(session, (d.envelope.patient_key for d in deliveries))
        now = runtime.clock.now()
        for delivery in deliveries:
            event = delivery.envelope
            current = needs[event.patient_key]
            changed, emitted = domain.decide(current, event, now)
            if not changed:
                continue
            by_id = {n.eligibility_id: n for n in current}
            by_id.update({n.eligibility_id: n for n in changed})
            needs[event.patient_key] = list(by_id.values())
            await repository.save_needs(session, changed)
            await runtime.outbox.stage(
                session,
                [event.caused(p, occurred_at=now) for p in emitted],
                headers=delivery.trace_headers,
            )

    return handle
