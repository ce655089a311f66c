"""Escalation's tables: cases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.escalation.domain import Case

SCHEMA = "escalation"


async def open_case(session: AsyncSession, case: Case) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.cases (escalation_id, clinic_id, patient_key, case_type, "
            "severity, summary, raised_at, state) VALUES (:e, :c, :p, :t, :s, :sum, :at, 'open') "
            "ON CONFLICT (escalation_id) DO NOTHING"
        ),
        {
            "e": case.escalation_id,
            "c": case.clinic_id,
            "p": case.patient_key,
            "t": case.case_type,
            "s": case.severity,
            "sum": case.summary,
            "at": case.raised_at,
        },
    )


async def resolve_case(session: AsyncSession, escalation_id: str, outcome: str) -> None:
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.cases SET state = 'resolved', outcome = :o WHERE escalation_id = :e"
        ),
        {"o": outcome, "e": escalation_id},
    )


async def open_cases(session: AsyncSession, clinics: frozenset[str] | None) -> list[dict[str, Any]]:
    clause = "" if clinics is None else "AND clinic_id = ANY(:clinics)"
    rows = (
        await session.execute(
            text(
                f"SELECT escalation_id, clinic_id, patient_key, case_type, severity, summary, "
                f"raised_at FROM {SCHEMA}.cases WHERE state = 'open' {clause} "
                "ORDER BY CASE severity WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 "
                "WHEN 'normal' THEN 2 ELSE 3 END, raised_at"
            ),
            {"clinics": sorted(clinics or ())},
        )
    ).all()
    return [dict(r._mapping) for r in rows]
