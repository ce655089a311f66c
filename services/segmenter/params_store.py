"""Each clinic's stored parameter overrides (``segmenter.clinic_params``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.segmenter.domain.params import DEFAULTS, ClinicParams, effective
from services.segmenter.rows import SCHEMA

_params_cache: dict[tuple[str, int], ClinicParams] = {}


async def load_params(
    session: AsyncSession, clinic_ids: Iterable[str]
) -> dict[str, tuple[ClinicParams, int]]:
    """Each clinic's effective parameters and their version (0: never changed, defaults)."""
    ids = sorted(set(clinic_ids))
    rows = (
        await session.execute(
            text(
                f"SELECT clinic_id, overrides, version FROM {SCHEMA}.clinic_params "
                "WHERE clinic_id = ANY(:ids)"
            ),
            {"ids": ids},
        )
    ).all()
    found = {r.clinic_id: r for r in rows}
    out: dict[str, tuple[ClinicParams, int]] = {}
    for clinic in ids:
        row = found.get(clinic)
        if row is None:
            out[clinic] = (DEFAULTS, 0)
            continue
        cached = _params_cache.get((clinic, row.version))
        if cached is None:
            cached = effective(row.overrides)
            _params_cache[(clinic, row.version)] = cached
        out[clinic] = (cached, row.version)
    return out


async def overrides_of(session: AsyncSession, clinic_id: str) -> tuple[dict[str, Any], int]:
    row = (
        await session.execute(
            text(f"SELECT overrides, version FROM {SCHEMA}.clinic_params WHERE clinic_id = :c"),
            {"c": clinic_id},
        )
    ).first()
    return (dict(row.overrides), row.version) if row else ({}, 0)


async def store_overrides(
    session: AsyncSession, clinic_id: str, overrides: dict[str, Any], updated_by: str
) -> int:
    """Replace a clinic's overrides; returns the new version."""
    version: int = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.clinic_params (clinic_id, overrides, version, updated_by) "
                "VALUES (:c, CAST(:o AS jsonb), 1, :by) ON CONFLICT (clinic_id) DO UPDATE SET "
                "overrides = EXCLUDED.overrides, version = clinic_params.version + 1, "
                "updated_by = EXCLUDED.updated_by, updated_at = now() RETURNING version"
            ),
            {"c": clinic_id, "o": json.dumps(overrides), "by": updated_by},
        )
    ).scalar_one()
    return version
