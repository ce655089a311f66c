"""Ingest's I/O shell: de-duplicate the source message, stage its events, one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.ingest import domain, repository
from shared.runtime import Runtime


@dataclass(frozen=True)
class Accepted:
    event_ids: list[str]
    duplicate: bool


async def accept_native(
    runtime: Runtime, *, clinic_id: str, raw: bytes, doc: Any, idempotency_key: str | None
) -> Accepted:
    """Validate all events (all or nothing), then store the message and stage its events."""
    source_key = domain.dedupe_key(raw, idempotency_key)
    now = runtime.clock.now()
    events = domain.parse_native(doc, clinic_id=clinic_id, source_key=source_key, received_at=now)
    ids = [e.event_id for e in events]
    async with runtime.sessions() as session, session.begin():
        fresh = await repository.record_source_message(
            session,
            clinic_id=clinic_id,
            source_key=source_key,
            route="json",
            raw=raw,
            event_ids=ids,
            received_at=now,
        )
        if not fresh:
            earlier = await repository.earlier_event_ids(session, clinic_id, source_key)
            return Accepted([str(i) for i in earlier], duplicate=True)
        await runtime.outbox.stage(session, events)
    return Accepted([str(i) for i in ids], duplicate=False)
