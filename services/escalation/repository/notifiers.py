"""Notifier configurations of a clinic. A stored secret is write-only: read here for delivery,
never returned by ``public`` (the API's view) and never logged."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.escalation.notifiers import SANDBOX, NotifierConfig, NotifierKind
from services.escalation.repository import SCHEMA


def _config(row: Any) -> NotifierConfig:
    return NotifierConfig(
        row.notifier_id,
        NotifierKind(row.kind),
        dict(row.settings),
        row.secret_env,
        row.secret_value,
    )


async def load(
    session: AsyncSession, clinic_id: str, notifier_ids: Iterable[str]
) -> list[NotifierConfig]:
    """The named notifiers that exist, in the order asked; "sandbox" always exists."""
    wanted = list(dict.fromkeys(notifier_ids))
    rows = (
        await session.execute(
            text(
                f"SELECT notifier_id, kind, settings, secret_env, secret_value FROM "
                f"{SCHEMA}.notifiers WHERE clinic_id = :c AND notifier_id = ANY(:ids)"
            ),
            {"c": clinic_id, "ids": wanted},
        )
    ).all()
    found = {r.notifier_id: _config(r) for r in rows}
    if "sandbox" not in found:
        found["sandbox"] = SANDBOX
    return [found[n] for n in wanted if n in found]


async def public(session: AsyncSession, clinic_id: str) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            text(
                f"SELECT notifier_id, kind, settings, secret_env, "
                f"(secret_value IS NOT NULL) AS secret_stored, updated_at FROM {SCHEMA}.notifiers "
                "WHERE clinic_id = :c ORDER BY notifier_id"
            ),
            {"c": clinic_id},
        )
    ).all()
    return [
        {
            "notifier_id": r.notifier_id,
            "kind": r.kind,
            "settings": r.settings,
            "secret_env": r.secret_env,
            "secret_set": bool(r.secret_env or r.secret_stored),
            "updated_at": r.updated_at,
        }
        for r in rows
    ]


async def upsert(
    session: AsyncSession,
    clinic_id: str,
    notifier_id: str,
    kind: NotifierKind,
    settings: dict[str, Any],
    *,
    secret_env: str | None,
    secret_value: str | None,
) -> None:
    """Create or replace; a PUT without a new secret keeps the stored one."""
    new_secret = secret_env is not None or secret_value is not None
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.notifiers (clinic_id, notifier_id, kind, settings, secret_env, "
            "secret_value) VALUES (:c, :n, :k, CAST(:s AS jsonb), :env, :val) "
            "ON CONFLICT (clinic_id, notifier_id) DO UPDATE SET kind = EXCLUDED.kind, "
            "settings = EXCLUDED.settings, updated_at = now(), "
            "secret_env = CASE WHEN :new THEN EXCLUDED.secret_env ELSE notifiers.secret_env END, "
            "secret_value = CASE WHEN :new THEN EXCLUDED.secret_value "
            "ELSE notifiers.secret_value END"
        ),
        {
            "c": clinic_id,
            "n": notifier_id,
            "k": kind.value,
            "s": json.dumps(settings),
            "env": secret_env,
            "val": secret_value,
            "new": new_secret,
        },
    )


async def has_real(session: AsyncSession, clinic_id: str) -> bool:
    """Whether the clinic has any notifier that is not a sandbox (else it is not set up)."""
    row = (
        await session.execute(
            text(
                f"SELECT 1 FROM {SCHEMA}.notifiers WHERE clinic_id = :c AND kind <> :sandbox "
                "LIMIT 1"
            ),
            {"c": clinic_id, "sandbox": NotifierKind.sandbox.value},
        )
    ).first()
    return row is not None
