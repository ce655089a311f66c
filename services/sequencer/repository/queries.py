"""Read-only queries for the ops API (no locks; clinic scope applied by the caller)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.sequencer.domain.model import Sequence
from services.sequencer.repository.rows import row_to_sequence
from services.sequencer.repository.state import SCHEMA, SEQ_SELECT


async def sequences(
    session: AsyncSession,
    clinic_id: str,
    *,
    patient_key: str | None = None,
    segment: str | None = None,
    state: str | None = None,
    pilot_id: str | None = None,
    limit: int = 100,
) -> list[Sequence]:
    where = ["clinic_id = :c"]
    params: dict[str, Any] = {"c": clinic_id, "n": limit}
    for col, value in (
        ("patient_key", patient_key),
        ("segment", segment),
        ("state", state),
        ("pilot_id", pilot_id),
    ):
        if value is not None:
            where.append(f"{col} = :{col}")
            params[col] = value
    rows = await session.execute(
        text(f"{SEQ_SELECT} WHERE {' AND '.join(where)} ORDER BY started_at DESC LIMIT :n"),
        params,
    )
    return [row_to_sequence(r._mapping) for r in rows]


async def active_in_clinic(
    session: AsyncSession, clinic_id: str, until: datetime
) -> list[Sequence]:
    """Active sequences whose pending step is due before ``until`` or waits on a pause."""
    rows = await session.execute(
        text(
            f"{SEQ_SELECT} WHERE clinic_id = :c AND state = 'active' AND next_step IS NOT NULL "
            "AND (next_due < :u OR NOT armed) ORDER BY next_due NULLS LAST LIMIT 5000"
        ),
        {"c": clinic_id, "u": until},
    )
    return [row_to_sequence(r._mapping) for r in rows]


async def due_in_clinic(
    session: AsyncSession,
    clinic_id: str,
    until: datetime,
    after: tuple[datetime, str] | None,
    page: int,
) -> list[Sequence]:
    """One page of the active sequences whose pending step is due before ``until``, in due
    order (then id), after ``after``: read a page at a time until the first steps are known."""
    rows = await session.execute(
        text(
            f"{SEQ_SELECT} WHERE clinic_id = :c AND state = 'active' AND next_step IS NOT NULL "
            "AND next_due < :u AND (CAST(:d AS timestamptz) IS NULL OR (next_due, sequence_id) "
            "> (CAST(:d AS timestamptz), CAST(:s AS text))) ORDER BY next_due, sequence_id "
            "LIMIT :n"
        ),
        {
            "c": clinic_id,
            "u": until,
            "d": after[0] if after else None,
            "s": after[1] if after else None,
            "n": page,
        },
    )
    return [row_to_sequence(r._mapping) for r in rows]


async def steps(session: AsyncSession, sequence_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    rows = await session.execute(
        text(
            f"SELECT sequence_id, step, channel, template_key, scheduled_for, status, note, "
            f"commanded_at, updated_at FROM {SCHEMA}.steps WHERE sequence_id = ANY(:s) "
            "ORDER BY sequence_id, step"
        ),
        {"s": sequence_ids},
    )
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in sequence_ids}
    for r in rows:
        out[r.sequence_id].append(
            {
                "step": r.step,
                "channel": r.channel,
                "template_key": r.template_key,
                "scheduled_for": _iso(r.scheduled_for),
                "status": r.status,
                "note": r.note,
                "commanded_at": _iso(r.commanded_at),
                "updated_at": _iso(r.updated_at),
            }
        )
    return out


async def activity(session: AsyncSession, sequence_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(f"SELECT kind, at FROM {SCHEMA}.activity WHERE sequence_id = :s ORDER BY at, id"),
        {"s": sequence_id},
    )
    return [{"kind": r.kind, "at": r.at.isoformat()} for r in rows]


async def state_counts(session: AsyncSession) -> list[tuple[str, str, str, int]]:
    """(clinic, state, arm, count) for /metrics."""
    rows = await session.execute(
        text(
            f"SELECT clinic_id, state, arm, count(*) AS n FROM {SCHEMA}.sequences "
            "GROUP BY clinic_id, state, arm"
        )
    )
    return [(r.clinic_id, r.state, r.arm, r.n) for r in rows]


async def pilot_arm_counts(session: AsyncSession) -> list[tuple[str, str, str, int]]:
    """(clinic, pilot, arm, patients) for /metrics."""
    rows = await session.execute(
        text(
            f"SELECT p.clinic_id, a.pilot_id, a.arm, count(*) AS n FROM "
            f"{SCHEMA}.pilot_assignments a JOIN {SCHEMA}.pilots p ON p.pilot_id = a.pilot_id "
            "GROUP BY p.clinic_id, a.pilot_id, a.arm"
        )
    )
    return [(r.clinic_id, r.pilot_id, r.arm, r.n) for r in rows]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
