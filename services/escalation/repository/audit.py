"""The audit trail: every action on a case or a clinic's set-up, by whom, when (clock time).

``detail`` holds ids, codes and flags only: a resolution's note is recorded as ``note: true``,
never its text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.escalation.domain import AuditEntry
from services.escalation.repository import SCHEMA


async def add(
    session: AsyncSession,
    clinic_id: str,
    escalation_id: str | None,
    at: datetime,
    entries: Iterable[AuditEntry],
) -> None:
    rows = [
        {
            "c": clinic_id,
            "e": escalation_id,
            "at": at,
            "actor": entry.actor,
            "action": entry.action,
            "detail": json.dumps(dict(entry.detail), default=str),
        }
        for entry in entries
    ]
    if rows:
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.audit (clinic_id, escalation_id, at, actor, action, detail) "
                "VALUES (:c, :e, :at, :actor, :action, CAST(:detail AS jsonb))"
            ),
            rows,
        )


async def for_case(session: AsyncSession, escalation_id: str) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            text(
                f"SELECT at, actor, action, detail FROM {SCHEMA}.audit "
                "WHERE escalation_id = :e ORDER BY id"
            ),
            {"e": escalation_id},
        )
    ).all()
    return [dict(r._mapping) for r in rows]


async def for_clinic(session: AsyncSession, clinic_id: str, limit: int) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            text(
                f"SELECT at, actor, action, escalation_id, detail FROM {SCHEMA}.audit "
                "WHERE clinic_id = :c ORDER BY id DESC LIMIT :n"
            ),
            {"c": clinic_id, "n": limit},
        )
    ).all()
    return [dict(r._mapping) for r in rows]
