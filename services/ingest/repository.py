"""Ingest's tables: integration API keys, accepted and refused source messages, appointment
versions. Batch statements take parallel arrays (``unnest``) so a batch costs one round trip.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.mapping.appointments import AppointmentStatus, AppointmentVersion

SCHEMA = "ingest"
Pair = tuple[str, str]


# --- API keys ----------------------------------------------------------------------------------


async def find_api_key(session: AsyncSession, key_id: str) -> tuple[str, str, bool] | None:
    row = (
        await session.execute(
            text(
                f"SELECT clinic_id, secret_hash, revoked_at IS NULL FROM {SCHEMA}.api_keys "
                "WHERE key_id = :k"
            ),
            {"k": key_id},
        )
    ).first()
    return (row[0], row[1], bool(row[2])) if row else None


async def insert_api_key(
    session: AsyncSession,
    key_id: str,
    clinic_id: str,
    secret_hash: str,
    label: str,
    created_by: str | None = None,
) -> datetime:
    created: datetime = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.api_keys (key_id, clinic_id, secret_hash, label, created_by)"
                " VALUES (:k, :c, :h, :l, :by) RETURNING created_at"
            ),
            {"k": key_id, "c": clinic_id, "h": secret_hash, "l": label, "by": created_by},
        )
    ).scalar_one()
    return created


async def list_api_keys(session: AsyncSession, clinic_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            f"SELECT key_id, clinic_id, label, created_at, created_by, revoked_at "
            f"FROM {SCHEMA}.api_keys WHERE clinic_id = :c ORDER BY created_at, key_id"
        ),
        {"c": clinic_id},
    )
    return [dict(row._mapping) for row in rows]


async def key_clinic(session: AsyncSession, key_id: str) -> str | None:
    return (
        await session.execute(
            text(f"SELECT clinic_id FROM {SCHEMA}.api_keys WHERE key_id = :k"), {"k": key_id}
        )
    ).scalar()


async def revoke_api_key(session: AsyncSession, key_id: str) -> datetime | None:
    """Revoke (idempotently: a revoked key keeps its first revocation time).

    Wall time (the database's), not the controlled clock: credentials live in real time.
    """
    return (
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.api_keys SET revoked_at = COALESCE(revoked_at, now()) "
                "WHERE key_id = :k RETURNING revoked_at"
            ),
            {"k": key_id},
        )
    ).scalar()


# --- source messages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredSource:
    fingerprint: str | None
    event_ids: list[str]


@dataclass(frozen=True)
class NewSource:
    clinic_id: str
    source_key: str
    route: str
    raw: bytes
    event_ids: list[str]
    received_at: datetime
    fingerprint: str


async def insert_refused(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Rows: clinic_id, route, source_key, raw, problems (list of {loc, msg}), received_at."""
    if not rows:
        return
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.refused_messages "
            "(clinic_id, route, source_key, raw, problems, received_at) "
            "VALUES (:clinic_id, :route, :source_key, :raw, CAST(:problems AS jsonb), :received_at)"
        ),
        [{**row, "problems": _jsonb_text(row["problems"])} for row in rows],
    )


def _jsonb_text(value: Any) -> str:
    """JSON that jsonb accepts: a path may name a sender's key holding NUL, which jsonb refuses
    (the refusal would then fail the whole batch), so NUL becomes U+FFFD."""
    return json.dumps(value).replace("\\u0000", "\\ufffd")


async def lookup_batch(
    session: AsyncSession, sources: Sequence[Pair], appointments: Sequence[Pair]
) -> tuple[dict[Pair, StoredSource], dict[Pair, list[AppointmentVersion]]]:
    """The stored source messages and the known appointment versions, in one round trip."""
    if not sources and not appointments:
        return {}, {}
    rows = await session.execute(
        text(
            # Joins from the (small) key lists, so each key is one index probe whatever the
            # planner thinks of a table it has not analysed yet.
            "SELECT 's', m.clinic_id, m.source_key, m.fingerprint, m.event_ids, "
            "NULL::timestamptz, NULL::timestamptz, NULL::text "
            "FROM unnest(CAST(:sc AS text[]), CAST(:sk AS text[])) AS k(c, s) "
            f"JOIN {SCHEMA}.source_messages m ON m.clinic_id = k.c AND m.source_key = k.s "
            "UNION ALL SELECT 'v', v.clinic_id, v.appointment_key, NULL, NULL, "
            "v.source_updated_at, v.start, v.status "
            "FROM unnest(CAST(:vc AS text[]), CAST(:vk AS text[])) AS a(c, k) "
            f"JOIN {SCHEMA}.appointment_versions v "
            "ON v.clinic_id = a.c AND v.appointment_key = a.k"
        ),
        {
            "sc": [c for c, _ in sources],
            "sk": [k for _, k in sources],
            "vc": [c for c, _ in appointments],
            "vk": [k for _, k in appointments],
        },
    )
    stored: dict[Pair, StoredSource] = {}
    versions: dict[Pair, list[AppointmentVersion]] = {}
    for kind, clinic, key, fingerprint, ids, at, start, status in rows:
        if kind == "s":
            stored[(clinic, key)] = StoredSource(fingerprint, list(ids or []))
        else:
            versions.setdefault((clinic, key), []).append(
                AppointmentVersion(at, start, AppointmentStatus(status))
            )
    return stored, versions


async def store_batch(
    session: AsyncSession,
    rows: Sequence[NewSource],
    versions: Sequence[tuple[str, str, AppointmentVersion]],
) -> set[Pair]:
    """Insert new source messages and upsert appointment versions in one statement.

    Returns the (clinic, key) pairs inserted; a pair missing was stored a moment ago by another
    transaction (its versions are written again here, which changes nothing: same facts).
    """
    if not rows:
        return set()
    unique = {(c, k, v.source_updated_at): v for c, k, v in versions}
    keys = list(unique)
    result = await session.execute(
        text(
            f"WITH versions AS (INSERT INTO {SCHEMA}.appointment_versions "
            "(clinic_id, appointment_key, source_updated_at, start, status) "
            "SELECT * FROM unnest(CAST(:vc AS text[]), CAST(:vk AS text[]), "
            "CAST(:vat AS timestamptz[]), CAST(:vstart AS timestamptz[]), CAST(:vs AS text[])) "
            "ON CONFLICT (clinic_id, appointment_key, source_updated_at) "
            "DO UPDATE SET start = EXCLUDED.start, status = EXCLUDED.status) "
            f"INSERT INTO {SCHEMA}.source_messages "
            "(clinic_id, source_key, route, raw, event_ids, received_at, fingerprint) "
            "SELECT c, k, r, raw, ARRAY(SELECT jsonb_array_elements_text(ids::jsonb)), at, fp "
            "FROM unnest(CAST(:c AS text[]), CAST(:k AS text[]), CAST(:r AS text[]), "
            "CAST(:raw AS bytea[]), CAST(:ids AS text[]), CAST(:at AS timestamptz[]), "
            "CAST(:fp AS text[])) AS t(c, k, r, raw, ids, at, fp) "
            "ON CONFLICT (clinic_id, source_key) DO NOTHING RETURNING clinic_id, source_key"
        ),
        {
            "c": [r.clinic_id for r in rows],
            "k": [r.source_key for r in rows],
            "r": [r.route for r in rows],
            "raw": [r.raw for r in rows],
            "ids": [json.dumps(r.event_ids) for r in rows],
            "at": [r.received_at for r in rows],
            "fp": [r.fingerprint for r in rows],
            "vc": [k[0] for k in keys],
            "vk": [k[1] for k in keys],
            "vat": [k[2] for k in keys],
            "vstart": [unique[k].start for k in keys],
            "vs": [unique[k].status.value for k in keys],
        },
    )
    return {(row[0], row[1]) for row in result}


# --- appointment versions ------------------------------------------------------------------------


async def load_versions(
    session: AsyncSession, keys: Sequence[Pair]
) -> dict[Pair, list[AppointmentVersion]]:
    if not keys:
        return {}
    rows = await session.execute(
        text(
            f"SELECT clinic_id, appointment_key, source_updated_at, start, status "
            f"FROM {SCHEMA}.appointment_versions WHERE (clinic_id, appointment_key) IN "
            "(SELECT * FROM unnest(CAST(:c AS text[]), CAST(:k AS text[])))"
        ),
        {"c": [c for c, _ in keys], "k": [k for _, k in keys]},
    )
    out: dict[Pair, list[AppointmentVersion]] = {}
    for row in rows:
        version = AppointmentVersion(row[2], row[3], AppointmentStatus(row[4]))
        out.setdefault((row[0], row[1]), []).append(version)
    return out


async def save_versions(
    session: AsyncSession, rows: Sequence[tuple[str, str, AppointmentVersion]]
) -> None:
    """Upsert (clinic, appointment key, version); a later row for the same instant wins."""
    unique = {(c, k, v.source_updated_at): v for c, k, v in rows}
    if not unique:
        return
    keys = list(unique)
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.appointment_versions "
            "(clinic_id, appointment_key, source_updated_at, start, status) "
            "SELECT * FROM unnest(CAST(:c AS text[]), CAST(:k AS text[]), "
            "CAST(:at AS timestamptz[]), CAST(:start AS timestamptz[]), CAST(:s AS text[])) "
            "ON CONFLICT (clinic_id, appointment_key, source_updated_at) "
            "DO UPDATE SET start = EXCLUDED.start, status = EXCLUDED.status"
        ),
        {
            "c": [k[0] for k in keys],
            "k": [k[1] for k in keys],
            "at": [k[2] for k in keys],
            "start": [unique[k].start for k in keys],
            "s": [unique[k].status.value for k in keys],
        },
    )
