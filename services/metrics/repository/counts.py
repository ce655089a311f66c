"""Metrics read model: event counts by clinic and type (the skeleton's one table)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

SCHEMA = "metrics"


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


async def all_counts(session: AsyncSession) -> list[tuple[str, str, int]]:
    rows = (
        await session.execute(
            text(f"SELECT clinic_id, event_type, n FROM {SCHEMA}.event_counts ORDER BY 1, 2")
        )
    ).all()
    return [(r[0], r[1], int(r[2])) for r in rows]
