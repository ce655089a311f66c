"""Pilots, their hash assignments, screenings, and the weekly decisions staff record."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.sequencer.domain.pilots import Pilot, PilotStatus
from services.sequencer.repository.state import SCHEMA
from shared.events.common import Segment
from shared.events.outreach import Arm
from shared.events.pilot import CohortFilters

_COLS = (
    "pilot_id, clinic_id, name, segment, cohort_size, holdout_share, days, status, starts_at, "
    "ends_at, closed_at, enrolled, cohort, exclusive, baseline_days, launched_at"
)


def _pilot(m: Any) -> Pilot:
    return Pilot(
        pilot_id=m.pilot_id,
        clinic_id=m.clinic_id,
        name=m.name,
        segment=Segment(m.segment),
        cohort_size=m.cohort_size,
        holdout_share=m.holdout_share,
        days=m.days,
        status=PilotStatus(m.status),
        starts_at=m.starts_at,
        ends_at=m.ends_at,
        closed_at=m.closed_at,
        enrolled=m.enrolled,
        cohort=CohortFilters.model_validate(m.cohort or {}),
        exclusive=m.exclusive,
        baseline_days=m.baseline_days,
        launched_at=m.launched_at,
    )


def _cohort(pilot: Pilot) -> str:
    return pilot.cohort.model_dump_json(exclude_none=True)


async def get(session: AsyncSession, pilot_id: str, *, lock: bool = False) -> Pilot | None:
    row = (
        await session.execute(
            text(
                f"SELECT {_COLS} FROM {SCHEMA}.pilots WHERE pilot_id = :p"
                + (" FOR UPDATE" if lock else "")
            ),
            {"p": pilot_id},
        )
    ).first()
    return _pilot(row) if row else None


async def list_for(session: AsyncSession, clinic_id: str | None) -> list[Pilot]:
    where = "WHERE clinic_id = :c" if clinic_id else ""
    rows = await session.execute(
        text(f"SELECT {_COLS} FROM {SCHEMA}.pilots {where} ORDER BY created_at"),
        {"c": clinic_id} if clinic_id else {},
    )
    return [_pilot(r) for r in rows]


async def running_for(session: AsyncSession, clinics: Iterable[str]) -> list[Pilot]:
    """Running pilots of these clinics, locked: enrolment counts against the cohort."""
    rows = await session.execute(
        text(
            f"SELECT {_COLS} FROM {SCHEMA}.pilots WHERE clinic_id = ANY(:c) AND status = "
            "'running' ORDER BY starts_at, pilot_id FOR UPDATE"
        ),
        {"c": list(set(clinics))},
    )
    return [_pilot(r) for r in rows]


async def create(session: AsyncSession, pilot: Pilot, by: str, at: datetime) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.pilots (pilot_id, clinic_id, name, segment, cohort_size, "
            "holdout_share, days, status, created_by, created_at, cohort, exclusive, "
            "baseline_days) VALUES (:p, :c, :n, :s, :cs, :h, :d, 'draft', :by, :at, "
            "CAST(:co AS jsonb), :ex, :bd)"
        ),
        {
            "p": pilot.pilot_id,
            "c": pilot.clinic_id,
            "n": pilot.name,
            "s": pilot.segment.value,
            "cs": pilot.cohort_size,
            "h": pilot.holdout_share,
            "d": pilot.days,
            "by": by,
            "at": at,
            "co": _cohort(pilot),
            "ex": pilot.exclusive,
            "bd": pilot.baseline_days,
        },
    )


async def save(session: AsyncSession, pilot: Pilot) -> None:
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.pilots SET name = :n, segment = :s, cohort_size = :cs, "
            "holdout_share = :h, days = :d, status = :st, starts_at = :sa, ends_at = :ea, "
            "closed_at = :ca, enrolled = :e, cohort = CAST(:co AS jsonb), exclusive = :ex, "
            "baseline_days = :bd, launched_at = :la WHERE pilot_id = :p"
        ),
        {
            "p": pilot.pilot_id,
            "n": pilot.name,
            "s": pilot.segment.value,
            "cs": pilot.cohort_size,
            "h": pilot.holdout_share,
            "d": pilot.days,
            "st": pilot.status.value,
            "sa": pilot.starts_at,
            "ea": pilot.ends_at,
            "ca": pilot.closed_at,
            "e": pilot.enrolled,
            "co": _cohort(pilot),
            "ex": pilot.exclusive,
            "bd": pilot.baseline_days,
            "la": pilot.launched_at,
        },
    )


async def delete(session: AsyncSession, pilot_id: str) -> None:
    await session.execute(
        text(f"DELETE FROM {SCHEMA}.pilots WHERE pilot_id = :p AND status = 'draft'"),
        {"p": pilot_id},
    )


async def assignments_of(
    session: AsyncSession, pilot_ids: Iterable[str], patient_keys: Iterable[str]
) -> dict[tuple[str, str], Arm]:
    rows = await session.execute(
        text(
            f"SELECT pilot_id, patient_key, arm FROM {SCHEMA}.pilot_assignments "
            "WHERE pilot_id = ANY(:p) AND patient_key = ANY(:k)"
        ),
        {"p": list(set(pilot_ids)), "k": list(set(patient_keys))},
    )
    return {(r.pilot_id, r.patient_key): Arm(r.arm) for r in rows}


async def record_assignments(
    session: AsyncSession, rows: list[tuple[str, str, Arm, str, datetime]]
) -> None:
    if rows:
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.pilot_assignments (pilot_id, patient_key, arm, "
                "sequence_id, assigned_at) VALUES (:p, :k, :a, :s, :at) "
                "ON CONFLICT (pilot_id, patient_key) DO NOTHING"
            ),
            [{"p": p, "k": k, "a": a.value, "s": s, "at": at} for p, k, a, s, at in rows],
        )


async def arm_counts(session: AsyncSession, pilot_id: str) -> dict[str, int]:
    rows = await session.execute(
        text(
            f"SELECT arm, count(*) AS n FROM {SCHEMA}.pilot_assignments WHERE pilot_id = :p "
            "GROUP BY arm"
        ),
        {"p": pilot_id},
    )
    return {r.arm: r.n for r in rows}


async def facts(session: AsyncSession, pilot_id: str) -> list[tuple[str, str, datetime]]:
    """(arm, kind, at) for the review: the pilot's sequences' activity and commanded steps."""
    rows = await session.execute(
        text(
            f"SELECT s.arm, a.kind, a.at FROM {SCHEMA}.activity a JOIN {SCHEMA}.sequences s "
            "ON s.sequence_id = a.sequence_id WHERE s.pilot_id = :p "
            f"UNION ALL SELECT s.arm, 'step_commanded', t.commanded_at FROM {SCHEMA}.steps t "
            f"JOIN {SCHEMA}.sequences s ON s.sequence_id = t.sequence_id "
            "WHERE s.pilot_id = :p AND t.commanded_at IS NOT NULL"
        ),
        {"p": pilot_id},
    )
    return [(r.arm, r.kind, r.at) for r in rows]


async def add_review(
    session: AsyncSession,
    pilot_id: str,
    week: int,
    decision: str,
    note: str,
    by: str,
    at: datetime,
    checklist: Iterable[str] = (),
) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.pilot_reviews (pilot_id, week, decision, note, reviewed_by, "
            "reviewed_at, checklist) VALUES (:p, :w, :d, :n, :by, :at, CAST(:cl AS jsonb))"
        ),
        {
            "p": pilot_id,
            "w": week,
            "d": decision,
            "n": note,
            "by": by,
            "at": at,
            "cl": json.dumps(list(checklist)),
        },
    )


async def reviews(session: AsyncSession, pilot_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            f"SELECT week, decision, note, reviewed_by, reviewed_at, checklist FROM "
            f"{SCHEMA}.pilot_reviews WHERE pilot_id = :p ORDER BY reviewed_at, id"
        ),
        {"p": pilot_id},
    )
    return [
        {
            "week": r.week,
            "decision": r.decision,
            "note": r.note,
            "reviewed_by": r.reviewed_by,
            "reviewed_at": r.reviewed_at.isoformat(),
            "checklist": list(r.checklist or []),
        }
        for r in rows
    ]


async def holdouts_of(session: AsyncSession, pilot_id: str) -> list[str]:
    rows = await session.execute(
        text(
            f"SELECT patient_key FROM {SCHEMA}.sequences WHERE pilot_id = :p AND arm = 'holdout' "
            "AND state = 'active'"
        ),
        {"p": pilot_id},
    )
    return [r.patient_key for r in rows]
