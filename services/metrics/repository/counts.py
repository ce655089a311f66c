"""Counters kept per event: event types and message outcomes, by clinic."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.repository import SCHEMA


async def add_counts(session: AsyncSession, counts: Counter[tuple[str, str]]) -> None:
    if not counts:
        return
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.event_counts (clinic_id, event_type, n) VALUES (:c, :t, :n) "
            f"ON CONFLICT (clinic_id, event_type) DO UPDATE SET n = {SCHEMA}.event_counts.n + "
            "EXCLUDED.n"
        ),
        [{"c": c, "t": t, "n": n} for (c, t), n in sorted(counts.items())],
    )


async def add_send_counts(
    session: AsyncSession, counts: Counter[tuple[str, str, str, str]]
) -> None:
    if not counts:
        return
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.send_counts (clinic_id, channel, status, reason, n) "
            "VALUES (:c, :ch, :s, :r, :n) ON CONFLICT (clinic_id, channel, status, reason) "
            f"DO UPDATE SET n = {SCHEMA}.send_counts.n + EXCLUDED.n"
        ),
        [{"c": c, "ch": ch, "s": s, "r": r, "n": n} for (c, ch, s, r), n in sorted(counts.items())],
    )


async def all_counts(session: AsyncSession) -> list[tuple[str, str, int]]:
    rows = (
        await session.execute(
            text(f"SELECT clinic_id, event_type, n FROM {SCHEMA}.event_counts ORDER BY 1, 2")
        )
    ).all()
    return [(r[0], r[1], int(r[2])) for r in rows]


async def all_send_counts(session: AsyncSession) -> list[tuple[str, str, str, str, int]]:
    rows = (
        await session.execute(
            text(
                f"SELECT clinic_id, channel, status, reason, n FROM {SCHEMA}.send_counts "
                "ORDER BY 1, 2, 3, 4"
            )
        )
    ).all()
    return [(r[0], r[1], r[2], r[3], int(r[4])) for r in rows]
