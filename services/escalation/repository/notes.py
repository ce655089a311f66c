"""Staff notes on a case, oldest first. The text is shown to staff only: never logged, never in
an event or the audit trail (which records that a note was added, not what it says)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.escalation.repository import SCHEMA


async def add(
    session: AsyncSession, escalation_id: str, clinic_id: str, author: str, note: str, at: datetime
) -> int:
    note_id: int = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.case_notes (escalation_id, clinic_id, author, note, at) "
                "VALUES (:e, :c, :a, :n, :at) RETURNING id"
            ),
            {"e": escalation_id, "c": clinic_id, "a": author, "n": note, "at": at},
        )
    ).scalar_one()
    return note_id


async def for_case(session: AsyncSession, escalation_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            f"SELECT id AS note_id, author, note, at FROM {SCHEMA}.case_notes "
            "WHERE escalation_id = :e ORDER BY id"
        ),
        {"e": escalation_id},
    )
    return [dict(r._mapping) for r in rows]
