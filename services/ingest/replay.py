"""Re-map kept raw messages with the current mapping (after a mapping fix).

An accepted message is mapped again under its original identity and receipt time: events that
come out the same get the same ids (already published: nothing is sent), changed or new ones get
new ids and are published (downstream inboxes drop what they have seen). A refused message that
now maps is accepted as if it had just arrived, keeping its original receipt time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest import archive, domain, handlers, repository, submissions
from services.ingest.archive import Archived
from services.ingest.domain import Refused
from services.ingest.ingestion import Ingestion
from services.ingest.mapping.drafts import finalize
from services.ingest.submissions import Submission
from shared.runtime import Runtime

CHUNK = 100


@dataclass
class ReplayReport:
    messages: int = 0
    events_published: int = 0
    events_unchanged: int = 0
    accepted_now: int = 0  # refused before, accepted now
    still_refused: int = 0
    refused_now: int = 0  # accepted before, refused by today's mapping (its events stand)
    not_replayable: int = 0  # raw bytes already purged by the retention

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def replay(
    runtime: Runtime,
    ingestion: Ingestion,
    clinic_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    include_refused: bool = True,
    limit: int = 1000,
) -> ReplayReport:
    report = ReplayReport()
    async with runtime.sessions() as session:
        items = await archive.replayable(session, clinic_id, since, until, include_refused, limit)
        report.not_replayable = await archive.purged_in_window(session, clinic_id, since, until)
    now = runtime.clock.now()
    for start in range(0, len(items), CHUNK):
        async with runtime.sessions() as session, session.begin():
            for item in items[start : start + CHUNK]:
                report.messages += 1
                if item.kind == "accepted":
                    await _accepted(session, runtime, ingestion, clinic_id, item, report, now)
                else:
                    await _refused(session, runtime, ingestion, clinic_id, item, report, now)
    return report


def rebuild(item: Archived, clinic_id: str, ingestion: Ingestion) -> list[Submission]:
    """The message as it was first read: same route, same receipt time, same identity."""
    ctx = ingestion.context(item.received_at, clinic_id)
    route = item.route
    if route == "json":
        subs = [submissions.native(item.raw, clinic_id, None, ctx)]
    elif route == "fhir" or route.startswith("fhir-put:"):
        path = None
        if route.startswith("fhir-put:"):
            kind, _, rid = route.partition(":")[2].partition("/")
            path = (kind, rid)
        subs = [submissions.fhir(item.raw, clinic_id, None, ctx, path)]
    else:
        subs = submissions.hl7_body(item.raw, clinic_id, None, ctx, route)
    if item.source_key and len(subs) == 1:
        subs = [replace(subs[0], source_key=item.source_key)]
    return subs


async def _accepted(
    session: AsyncSession,
    runtime: Runtime,
    ingestion: Ingestion,
    clinic_id: str,
    item: Archived,
    report: ReplayReport,
    now: datetime,
) -> None:
    try:
        [sub] = rebuild(item, clinic_id, ingestion)
    except (Refused, ValueError):
        report.refused_now += 1
        return
    if sub.mapped is None:
        report.refused_now += 1
        return
    keys = [(clinic_id, key) for key in sub.mapped.appointment_keys]
    loaded = await repository.load_versions(session, keys)
    history = {key: versions for (_c, key), versions in loaded.items()}
    try:
        facts, versions = finalize(sub.mapped, history)
    except Refused:
        report.refused_now += 1
        return
    events = domain.envelopes(
        facts, clinic_id=clinic_id, source_key=item.source_key or "", recorded_at=item.received_at
    )
    seen = set(item.event_ids)
    fresh = [e for e in events if str(e.event_id) not in seen]
    await runtime.outbox.stage(session, fresh)
    await repository.save_versions(session, [(clinic_id, k, v) for k, v in versions])
    ids = list(dict.fromkeys([*item.event_ids, *(str(e.event_id) for e in events)]))
    await archive.replayed(session, item.id, ids, now)
    report.events_published += len(fresh)
    report.events_unchanged += len(events) - len(fresh)


async def _refused(
    session: AsyncSession,
    runtime: Runtime,
    ingestion: Ingestion,
    clinic_id: str,
    item: Archived,
    report: ReplayReport,
    now: datetime,
) -> None:
    try:
        subs = rebuild(item, clinic_id, ingestion)
    except Refused:
        subs = []
    outcomes: Sequence[Any] = []
    if subs:
        [outcomes] = await handlers.accept_groups_in(
            session, runtime.outbox, [handlers.Group(subs, True)], keep=False
        )
    if not outcomes or not all(o.ok for o in outcomes):
        report.still_refused += 1
        await archive.still_refused(session, item.id, now)
        return
    report.accepted_now += 1
    report.events_published += sum(len(o.event_ids) for o in outcomes if o.status == "accepted")
    await archive.resolve_refused(session, item.id, now)
