"""Every eligibility of a running pilot's segment, screened once: the verdict and why."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.sequencer.domain.pilots import Screened
from services.sequencer.repository.state import SCHEMA

ScreeningRow = tuple[Screened, str, str, dict[str, Any], str, datetime]


async def record_screenings(session: AsyncSession, rows: list[ScreeningRow]) -> None:
    """(verdict, patient key, eligibility id, facts, plain reason, when); first verdict wins."""
    if rows:
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.pilot_screenings (pilot_id, patient_key, eligibility_id, "
                "verdict, arm, why, facts, reason, screened_at) VALUES (:p, :k, :e, :v, :a, "
                "CAST(:w AS jsonb), CAST(:f AS jsonb), :r, :at) ON CONFLICT DO NOTHING"
            ),
            [
                {
                    "p": s.pilot_id,
                    "k": key,
                    "e": eligibility_id,
                    "v": s.verdict.value,
                    "a": s.arm.value if s.arm else None,
                    "w": json.dumps(list(s.why)),
                    "f": json.dumps(facts),
                    "r": reason,
                    "at": at,
                }
                for s, key, eligibility_id, facts, reason, at in rows
            ],
        )


async def screenings(
    session: AsyncSession, pilot_id: str, verdict: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT patient_key, eligibility_id, verdict, arm, why, facts, reason, screened_at "
            f"FROM {SCHEMA}.pilot_screenings WHERE pilot_id = :p "
            "AND (CAST(:v AS text) IS NULL OR verdict = :v) "
            "ORDER BY screened_at, patient_key, eligibility_id LIMIT :n"
        ),
        {"p": pilot_id, "v": verdict, "n": limit},
    )
    return [
        {
            "patient_key": r.patient_key,
            "eligibility_id": r.eligibility_id,
            "verdict": r.verdict,
            "arm": r.arm,
            "why": list(r.why),
            **dict(r.facts),
            "reason": r.reason,
            "screened_at": r.screened_at.isoformat(),
        }
        for r in rows
    ]


async def screening_counts(session: AsyncSession, pilot_id: str) -> dict[str, int]:
    rows = await session.execute(
        text(
            f"SELECT verdict, count(*) AS n FROM {SCHEMA}.pilot_screenings WHERE pilot_id = :p "
            "GROUP BY verdict"
        ),
        {"p": pilot_id},
    )
    return {r.verdict: r.n for r in rows}
