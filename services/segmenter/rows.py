"""How the segmenter's state travels to Postgres: each table's rows as one JSON document per
statement (``json_to_recordset``). json.dumps and Postgres' JSON parser are both C, where
parameter arrays or executemany cost Python work per value."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmenter.domain import Membership
from services.segmenter.domain.records import Record
from shared.ids import clinic_of as clinic_of  # re-exported: the one rule, in shared/

SCHEMA = "segmenter"
MEMBERSHIP_COLUMNS = (
    "need_id, patient_key, clinic_id, segment, kind, service_line, source_kind, source_id, "
    "status, surface_at, expires_at, rank, cosmetic, fields, emissions, eligibility_id, "
    "hold_reason, closed_reason, closed_at, opened_at, origin"
)


async def execute_rows(session: AsyncSession, sql: Any, rows: list[Any]) -> None:
    """Rows are dicts (encoded in one call), or JSON objects already written (``str``)."""
    if not rows:
        return
    text_rows = isinstance(rows[0], str)
    document = f"[{','.join(rows)}]" if text_rows else json.dumps(rows, default=_iso)
    await session.execute(sql, {"rows": document})


def iso_or_none(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # uuid


def _recordset(columns: tuple[tuple[str, str], ...]) -> str:
    """Rows passed as one JSON document: json.dumps and Postgres' JSON parser are both C, where
    parameter arrays or executemany cost Python work per value."""
    return (
        "json_to_recordset(CAST(:rows AS json)) AS t("
        + ", ".join(f"{name} {kind}" for name, kind in columns)
        + ")"
    )


_RECORD_TYPES = (
    ("patient_key", "text"),
    ("kind", "text"),
    ("record_id", "text"),
    ("event_type", "text"),
    ("source_updated_at", "timestamptz"),
    ("source_version", "text"),
    ("type_rank", "smallint"),
    ("digest", "text"),
    ("first_at", "timestamptz"),
    ("payload", "jsonb"),
)
_RECORD_COLUMNS = ", ".join(name for name, _ in _RECORD_TYPES)
UPSERT_RECORD = text(
    f"INSERT INTO {SCHEMA}.records ({_RECORD_COLUMNS}) "
    f"SELECT {_RECORD_COLUMNS} FROM {_recordset(_RECORD_TYPES)} "
    "ON CONFLICT (patient_key, kind, record_id) DO UPDATE SET "
    "event_type = EXCLUDED.event_type, source_updated_at = EXCLUDED.source_updated_at, "
    "source_version = EXCLUDED.source_version, type_rank = EXCLUDED.type_rank, "
    "digest = EXCLUDED.digest, first_at = EXCLUDED.first_at, payload = EXCLUDED.payload, "
    "stored_at = now()"
)

_MEMBERSHIP_TYPES = (
    ("need_id", "text"),
    ("patient_key", "text"),
    ("clinic_id", "text"),
    ("segment", "text"),
    ("kind", "text"),
    ("service_line", "text"),
    ("source_kind", "text"),
    ("source_id", "text"),
    ("status", "text"),
    ("surface_at", "timestamptz"),
    ("expires_at", "timestamptz"),
    ("rank", "integer"),
    ("cosmetic", "boolean"),
    ("fields", "jsonb"),
    ("emissions", "integer"),
    ("eligibility_id", "text"),
    ("hold_reason", "text"),
    ("closed_reason", "text"),
    ("closed_at", "timestamptz"),
    ("opened_at", "timestamptz"),
    ("origin", "jsonb"),
)
UPSERT_MEMBERSHIP = text(
    f"INSERT INTO {SCHEMA}.memberships ({MEMBERSHIP_COLUMNS}) "
    f"SELECT {MEMBERSHIP_COLUMNS} FROM {_recordset(_MEMBERSHIP_TYPES)} "
    "ON CONFLICT (need_id) DO UPDATE SET service_line = EXCLUDED.service_line, "
    "status = EXCLUDED.status, surface_at = EXCLUDED.surface_at, "
    "expires_at = EXCLUDED.expires_at, rank = EXCLUDED.rank, cosmetic = EXCLUDED.cosmetic, "
    "fields = EXCLUDED.fields, emissions = EXCLUDED.emissions, "
    "eligibility_id = EXCLUDED.eligibility_id, hold_reason = EXCLUDED.hold_reason, "
    "closed_reason = EXCLUDED.closed_reason, closed_at = EXCLUDED.closed_at, "
    "opened_at = EXCLUDED.opened_at, origin = coalesce(EXCLUDED.origin, memberships.origin), "
    "updated_at = now()"
)

_PATIENT_TYPES = (
    ("patient_key", "text"),
    ("recovery_hold", "boolean"),
    ("raised", "jsonb"),
    ("next_transition_at", "timestamptz"),
    ("params_version", "integer"),
    ("rev", "uuid"),
)
UPDATE_PATIENT = text(
    f"UPDATE {SCHEMA}.patients p SET recovery_hold = t.recovery_hold, raised = t.raised, "
    "next_transition_at = t.next_transition_at, params_version = t.params_version, "
    f"rev = t.rev, updated_at = now() FROM {_recordset(_PATIENT_TYPES)} "
    "WHERE p.patient_key = t.patient_key"
)


def record_row(key: str, r: Record) -> str:
    """The row as JSON, with the payload's JSON spliced in as it was made (never re-encoded)."""
    head = {
        "patient_key": key,
        "kind": r.kind,
        "record_id": r.record_id,
        "event_type": r.event_type,
        "source_updated_at": r.stamp.updated_at.isoformat(),
        "source_version": r.stamp.version,
        "type_rank": r.stamp.type_rank,
        "digest": r.stamp.digest,
        "first_at": r.first_at.isoformat(),
    }
    raw = r.raw if r.raw is not None else r.payload.model_dump_json()
    return f'{json.dumps(head, default=_iso)[:-1]}, "payload": {raw}}}'


def membership_row(key: str, m: Membership) -> dict[str, Any]:
    return {
        "need_id": m.need_id,
        "patient_key": key,
        "clinic_id": clinic_of(key),
        "segment": m.segment,
        "kind": m.kind,
        "service_line": m.service_line,
        "source_kind": m.source.kind,
        "source_id": m.source.id,
        "status": m.status,
        "surface_at": m.surface_at.isoformat(),
        "expires_at": iso_or_none(m.expires_at),
        "rank": m.rank,
        "cosmetic": m.cosmetic,
        "fields": m.fields,
        "emissions": m.emissions,
        "eligibility_id": m.eligibility_id,
        "hold_reason": m.hold_reason,
        "closed_reason": m.closed_reason,
        "closed_at": iso_or_none(m.closed_at),
        "opened_at": iso_or_none(m.opened_at),
        "origin": m.origin,
    }
