"""One patient's cases, newest first (the patient's story in the staff console)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.escalation.repository import SCHEMA


async def for_patient(session: AsyncSession, patient_key: str, limit: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT escalation_id, clinic_id, case_type, severity, summary, raised_at, state, "
            "acknowledged_by, acknowledged_at, resolved_by, resolved_at, outcome, exhausted "
            f"FROM {SCHEMA}.cases WHERE patient_key = :pk "
            "ORDER BY raised_at DESC, escalation_id LIMIT :n"
        ),
        {"pk": patient_key, "n": limit},
    )
    return [dict(r._mapping) for r in rows]
