"""The SQL of who may be offered a freed slot: the waitlist (patients who asked for an earlier
time), who is in a segment for which service line, the practice's service prices and each
clinic's latest outreach policy."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.repository import SCHEMA
from shared.outreach_policy import DEFAULT_POLICY, OutreachPolicy

# --- the waitlist ----------------------------------------------------------------------------


async def add_to_waitlist(
    session: AsyncSession,
    *,
    clinic_id: str,
    patient_key: str,
    service_line: str | None,
    provider_id: str | None,
    at: datetime,
    by: str,
) -> tuple[dict[str, Any], bool]:
    """The open entry for this patient, service and provider; True when it is new."""
    found = (
        await session.execute(
            text(
                f"SELECT * FROM {SCHEMA}.waitlist WHERE patient_key = :pk AND removed_at IS NULL "
                "AND service_line IS NOT DISTINCT FROM :sl "
                "AND provider_id IS NOT DISTINCT FROM :p FOR UPDATE"
            ),
            {"pk": patient_key, "sl": service_line, "p": provider_id},
        )
    ).first()
    if found is not None:
        return dict(found._mapping), False
    row = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.waitlist (entry_id, clinic_id, patient_key, service_line, "
                "provider_id, added_at, added_by) VALUES (:id, :c, :pk, :sl, :p, :at, :by) "
                "RETURNING *"
            ),
            {
                "id": str(uuid.uuid4()),
                "c": clinic_id,
                "pk": patient_key,
                "sl": service_line,
                "p": provider_id,
                "at": at,
                "by": by,
            },
        )
    ).one()
    return dict(row._mapping), True


async def remove_from_waitlist(
    session: AsyncSession, entry_id: str, *, at: datetime, by: str
) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.waitlist SET removed_at = coalesce(removed_at, :at), "
                "removed_by = coalesce(removed_by, :by) WHERE entry_id = :id RETURNING *"
            ),
            {"id": entry_id, "at": at, "by": by},
        )
    ).first()
    return dict(row._mapping) if row else None


async def waitlist_entry(session: AsyncSession, entry_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(f"SELECT * FROM {SCHEMA}.waitlist WHERE entry_id = :id"), {"id": entry_id}
        )
    ).first()
    return dict(row._mapping) if row else None


async def waitlist(session: AsyncSession, clinic_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            f"SELECT * FROM {SCHEMA}.waitlist WHERE clinic_id = :c AND removed_at IS NULL "
            "ORDER BY added_at, entry_id"
        ),
        {"c": clinic_id},
    )
    return [dict(r._mapping) for r in rows]


# --- who is in a segment for which service ---------------------------------------------------


async def join_segment(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.recall_members (eligibility_id, clinic_id, patient_key, "
                "segment, service_line, due_on, marketing) VALUES (:e, :c, :pk, :seg, :sl, :due, "
                ":m) ON CONFLICT (eligibility_id) DO UPDATE SET due_on = EXCLUDED.due_on, "
                "marketing = EXCLUDED.marketing"
            ),
            list(rows),
        )


async def leave_segment(
    session: AsyncSession, eligibility_ids: Sequence[str], at: datetime
) -> None:
    """A PatientLeftSegment read before its PatientBecameEligible leaves a closed row behind,
    so the late eligibility cannot reopen it (the insert keeps ``left_at``)."""
    if eligibility_ids:
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.recall_members (eligibility_id, clinic_id, patient_key, "
                "segment, service_line, left_at) SELECT e, '', '', '', '', :at "
                "FROM unnest(CAST(:ids AS text[])) e ON CONFLICT (eligibility_id) "
                "DO UPDATE SET left_at = coalesce(recall_members.left_at, :at)"
            ),
            {"ids": list(eligibility_ids), "at": at},
        )


# --- candidates for a slot -------------------------------------------------------------------


async def candidates(
    session: AsyncSession, clinic_id: str, service_line: str, provider_id: str | None
) -> list[dict[str, Any]]:
    """Waitlist entries that fit the slot (their service or any; their provider or any), and
    open segment memberships for its service line."""
    rows = await session.execute(
        text(
            "SELECT patient_key, 'waitlist' AS source, added_at AS since, NULL::date AS due_on, "
            f"false AS marketing FROM {SCHEMA}.waitlist WHERE clinic_id = :c "
            "AND removed_at IS NULL AND (service_line IS NULL OR service_line = :sl) "
            "AND (provider_id IS NULL OR provider_id IS NOT DISTINCT FROM :p) "
            "UNION ALL SELECT patient_key, 'segment', NULL, due_on, marketing "
            f"FROM {SCHEMA}.recall_members WHERE clinic_id = :c AND service_line = :sl "
            "AND left_at IS NULL"
        ),
        {"c": clinic_id, "sl": service_line, "p": provider_id},
    )
    return [dict(r._mapping) for r in rows]


# --- prices and policies ---------------------------------------------------------------------


async def set_price(
    session: AsyncSession, clinic_id: str, service_line: str, cents: int, currency: str
) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.service_prices VALUES (:c, :sl, :p, :cur) "
            "ON CONFLICT (clinic_id, service_line) DO UPDATE SET "
            "price_cents = EXCLUDED.price_cents, currency = EXCLUDED.currency"
        ),
        {"c": clinic_id, "sl": service_line, "p": cents, "cur": currency},
    )


async def prices(session: AsyncSession, clinic_id: str) -> dict[str, tuple[int, str]]:
    rows = await session.execute(
        text(f"SELECT * FROM {SCHEMA}.service_prices WHERE clinic_id = :c"), {"c": clinic_id}
    )
    return {r.service_line: (r.price_cents, r.currency) for r in rows}


async def remember_policies(
    session: AsyncSession, policies: dict[str, OutreachPolicy], at: datetime
) -> None:
    """The outreach policy each clinic's latest SendStep carried: the sequencer owns the rules,
    and a freed-slot offer (which no step commands) is held to the same ones."""
    if policies:
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.clinic_policies VALUES (:c, CAST(:p AS jsonb), :at) "
                "ON CONFLICT (clinic_id) DO UPDATE SET policy = EXCLUDED.policy, "
                "updated_at = EXCLUDED.updated_at"
            ),
            [{"c": c, "p": p.model_dump_json(), "at": at} for c, p in sorted(policies.items())],
        )


async def policy(session: AsyncSession, clinic_id: str) -> OutreachPolicy:
    raw = (
        await session.execute(
            text(f"SELECT policy FROM {SCHEMA}.clinic_policies WHERE clinic_id = :c"),
            {"c": clinic_id},
        )
    ).scalar()
    if raw is None:
        return DEFAULT_POLICY
    return OutreachPolicy.model_validate(json.loads(raw) if isinstance(raw, str) else raw)
