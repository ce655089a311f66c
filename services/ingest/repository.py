"""Ingest's tables: integration API keys and the source messages it has accepted."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

SCHEMA = "ingest"


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
    session: AsyncSession, key_id: str, clinic_id: str, secret_hash: str, label: str
) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.api_keys (key_id, clinic_id, secret_hash, label) "
            "VALUES (:k, :c, :h, :l)"
        ),
        {"k": key_id, "c": clinic_id, "h": secret_hash, "l": label},
    )


async def record_source_message(
    session: AsyncSession,
    *,
    clinic_id: str,
    source_key: str,
    route: str,
    raw: bytes,
    event_ids: list[uuid.UUID],
    received_at: datetime,
) -> bool:
    """Remember a source message; False if it was accepted before (then nothing is staged)."""
    row = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.source_messages "
                "(clinic_id, source_key, route, raw, event_ids, received_at) "
                "VALUES (:c, :k, :r, :raw, :ids, :at) "
                "ON CONFLICT (clinic_id, source_key) DO NOTHING RETURNING id"
            ),
            {
                "c": clinic_id,
                "k": source_key,
                "r": route,
                "raw": raw,
                "ids": [str(i) for i in event_ids],
                "at": received_at,
            },
        )
    ).first()
    return row is not None


async def earlier_event_ids(session: AsyncSession, clinic_id: str, source_key: str) -> list[Any]:
    row = (
        await session.execute(
            text(
                f"SELECT event_ids FROM {SCHEMA}.source_messages "
                "WHERE clinic_id = :c AND source_key = :k"
            ),
            {"c": clinic_id, "k": source_key},
        )
    ).first()
    return list(row[0]) if row else []
