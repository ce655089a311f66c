"""Staff actions on a patient's outreach, with their reasons, oldest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.sequencer.repository import SCHEMA


async def record(
    session: AsyncSession,
    *,
    clinic_id: str,
    patient_key: str,
    action: str,
    reason: str,
    note: str | None,
    actor: str,
    at: datetime,
) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.staff_actions (clinic_id, patient_key, action, reason, note, "
            "actor, at) VALUES (:c, :pk, :a, :r, :n, :actor, :at)"
        ),
        {
            "c": clinic_id,
            "pk": patient_key,
            "a": action,
            "r": reason,
            "n": note,
            "actor": actor,
            "at": at,
        },
    )


async def for_patient(session: AsyncSession, patient_key: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            f"SELECT action, reason, note, actor, at FROM {SCHEMA}.staff_actions "
            "WHERE patient_key = :pk ORDER BY id"
        ),
        {"pk": patient_key},
    )
    return [dict(r._mapping) for r in rows]
