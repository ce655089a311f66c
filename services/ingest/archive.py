"""The raw-message archive: what replay reads back, and the retention sweep that purges it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.repository import SCHEMA

_WINDOW = (
    "clinic_id = :c AND (CAST(:since AS timestamptz) IS NULL OR received_at >= :since) "
    "AND (CAST(:until AS timestamptz) IS NULL OR received_at < :until)"
)


@dataclass(frozen=True)
class Archived:
    kind: str  # "accepted" | "refused"
    id: int
    route: str
    source_key: str | None
    raw: bytes
    event_ids: list[str]
    received_at: datetime


async def replayable(
    session: AsyncSession,
    clinic_id: str,
    since: datetime | None,
    until: datetime | None,
    include_refused: bool,
    limit: int,
) -> list[Archived]:
    """Messages of one clinic received in [since, until), oldest first, raw still kept."""
    params = {"c": clinic_id, "since": since, "until": until, "n": limit}
    rows = await session.execute(
        text(
            f"SELECT id, route, source_key, raw, event_ids, received_at "
            f"FROM {SCHEMA}.source_messages WHERE {_WINDOW} AND raw IS NOT NULL "
            "ORDER BY received_at, id LIMIT :n"
        ),
        params,
    )
    found = [Archived("accepted", r[0], r[1], r[2], bytes(r[3]), list(r[4]), r[5]) for r in rows]
    if include_refused:
        rows = await session.execute(
            text(
                f"SELECT id, route, source_key, raw, received_at FROM {SCHEMA}.refused_messages "
                f"WHERE {_WINDOW} AND resolved_at IS NULL ORDER BY received_at, id LIMIT :n"
            ),
            params,
        )
        found += [Archived("refused", r[0], r[1], r[2], bytes(r[3]), [], r[4]) for r in rows]
    found.sort(key=lambda a: (a.received_at, a.kind, a.id))
    return found[:limit]


async def purged_in_window(
    session: AsyncSession, clinic_id: str, since: datetime | None, until: datetime | None
) -> int:
    return int(
        (
            await session.execute(
                text(
                    f"SELECT count(*) FROM {SCHEMA}.source_messages WHERE {_WINDOW} AND raw IS NULL"
                ),
                {"c": clinic_id, "since": since, "until": until},
            )
        ).scalar_one()
    )


async def replayed(session: AsyncSession, item_id: int, event_ids: list[str], at: datetime) -> None:
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.source_messages SET event_ids = :ids, replayed_at = :at "
            "WHERE id = :id"
        ),
        {"ids": event_ids, "at": at, "id": item_id},
    )


async def resolve_refused(session: AsyncSession, item_id: int, at: datetime) -> None:
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.refused_messages SET replayed_at = :at, resolved_at = :at "
            "WHERE id = :id"
        ),
        {"at": at, "id": item_id},
    )


async def still_refused(session: AsyncSession, item_id: int, at: datetime) -> None:
    await session.execute(
        text(f"UPDATE {SCHEMA}.refused_messages SET replayed_at = :at WHERE id = :id"),
        {"at": at, "id": item_id},
    )


async def purge(session: AsyncSession, cutoff: datetime, at: datetime) -> tuple[int, int]:
    """Drop raw bytes received before ``cutoff`` (the de-duplication rows stay)."""
    kept = await session.execute(
        text(
            f"UPDATE {SCHEMA}.source_messages SET raw = NULL, purged_at = :at "
            "WHERE received_at < :cutoff AND raw IS NOT NULL"
        ),
        {"cutoff": cutoff, "at": at},
    )
    gone = await session.execute(
        text(f"DELETE FROM {SCHEMA}.refused_messages WHERE received_at < :cutoff"),
        {"cutoff": cutoff},
    )
    return int(getattr(kept, "rowcount", 0) or 0), int(getattr(gone, "rowcount", 0) or 0)
