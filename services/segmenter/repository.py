"""The segmenter's tables: segment memberships (needs) per patient."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmenter.domain import Need
from shared.events.common import Segment, ServiceLine, SourceRecordKind
from shared.events.eligibility import LeftReason

SCHEMA = "segmenter"

_COLUMNS = (
    "eligibility_id, patient_key, segment, service_line, source_kind, source_id, "
    "opened_at, closed_reason"
)


async def load_needs(session: AsyncSession, patient_keys: Iterable[str]) -> dict[str, list[Need]]:
    """Every need of these patients, locked for this transaction (one writer per patient)."""
    keys = sorted(set(patient_keys))
    rows = (
        await session.execute(
            text(
                f"SELECT {_COLUMNS} FROM {SCHEMA}.needs WHERE patient_key = ANY(:k) "
                "ORDER BY patient_key, opened_at FOR UPDATE"
            ),
            {"k": keys},
        )
    ).all()
    out: dict[str, list[Need]] = {k: [] for k in keys}
    for r in rows:
        out[r.patient_key].append(
            Need(
                eligibility_id=r.eligibility_id,
                patient_key=r.patient_key,
                segment=Segment(r.segment),
                service_line=ServiceLine(r.service_line),
                source_kind=SourceRecordKind(r.source_kind),
                source_id=r.source_id,
                opened_at=r.opened_at,
                closed_reason=LeftReason(r.closed_reason) if r.closed_reason else None,
            )
        )
    return out


async def save_needs(session: AsyncSession, needs: Sequence[Need]) -> None:
    if not needs:
        return
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.needs ({_COLUMNS}) VALUES (:eligibility_id, :patient_key, "
            ":segment, :service_line, :source_kind, :source_id, :opened_at, :closed_reason) "
            "ON CONFLICT (eligibility_id) DO UPDATE SET closed_reason = EXCLUDED.closed_reason, "
            "updated_at = now()"
        ),
        [
            {
                "eligibility_id": n.eligibility_id,
                "patient_key": n.patient_key,
                "segment": n.segment.value,
                "service_line": n.service_line.value,
                "source_kind": n.source_kind.value,
                "source_id": n.source_id,
                "opened_at": n.opened_at,
                "closed_reason": n.closed_reason.value if n.closed_reason else None,
            }
            for n in needs
        ],
    )
