"""The sequencer's tables: outreach sequences."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.sequencer.domain import Sequence
from shared.events.common import ClinicalUrgency, Purpose, Segment, ServiceLine
from shared.events.outreach import StopReason

SCHEMA = "sequencer"
_COLS = (
    "sequence_id",
    "patient_key",
    "eligibility_id",
    "segment",
    "service_line",
    "workflow_key",
    "purpose",
    "urgency",
    "provider_id",
    "location_id",
    "steps_planned",
    "steps_sent",
    "state",
    "stop_reason",
)


def _row_to_sequence(r: object) -> Sequence:
    m = r._mapping  # type: ignore[attr-defined]
    return Sequence(
        sequence_id=m["sequence_id"],
        patient_key=m["patient_key"],
        eligibility_id=m["eligibility_id"],
        segment=Segment(m["segment"]),
        service_line=ServiceLine(m["service_line"]),
        workflow_key=m["workflow_key"],
        purpose=Purpose(m["purpose"]),
        urgency=ClinicalUrgency(m["urgency"]),
        provider_id=m["provider_id"],
        location_id=m["location_id"],
        steps_planned=m["steps_planned"],
        steps_sent=m["steps_sent"],
        state=m["state"],
        stop_reason=StopReason(m["stop_reason"]) if m["stop_reason"] else None,
    )


async def active_for(session: AsyncSession, patient_key: str) -> Sequence | None:
    row = (
        await session.execute(
            text(
                f"SELECT {', '.join(_COLS)} FROM {SCHEMA}.sequences "
                "WHERE patient_key = :p AND state = 'active' FOR UPDATE"
            ),
            {"p": patient_key},
        )
    ).first()
    return _row_to_sequence(row) if row else None


async def by_id(session: AsyncSession, sequence_id: str) -> Sequence | None:
    row = (
        await session.execute(
            text(
                f"SELECT {', '.join(_COLS)} FROM {SCHEMA}.sequences "
                "WHERE sequence_id = :s FOR UPDATE"
            ),
            {"s": sequence_id},
        )
    ).first()
    return _row_to_sequence(row) if row else None


async def save(session: AsyncSession, seq: Sequence) -> None:
    values = {c: getattr(seq, c if c != "urgency" else "urgency") for c in _COLS}
    for enum_col in ("segment", "service_line", "purpose", "urgency", "stop_reason"):
        v = values[enum_col]
        values[enum_col] = v.value if v is not None else None
    placeholders = ", ".join(f":{c}" for c in _COLS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in ("steps_sent", "state", "stop_reason"))
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.sequences ({', '.join(_COLS)}) VALUES ({placeholders}) "
            f"ON CONFLICT (sequence_id) DO UPDATE SET {updates}, updated_at = now()"
        ),
        values,
    )


async def list_for_patient(session: AsyncSession, patient_key: str) -> list[Sequence]:
    rows = (
        await session.execute(
            text(
                f"SELECT {', '.join(_COLS)} FROM {SCHEMA}.sequences WHERE patient_key = :p "
                "ORDER BY created_at"
            ),
            {"p": patient_key},
        )
    ).all()
    return [_row_to_sequence(r) for r in rows]
