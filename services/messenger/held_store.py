"""The SQL of held steps (``messenger.held_steps``, see ``held``): what has arrived for a
patient, which steps wait, holding and dropping them, the per-patient locks, the staff list."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.domain import prerequisites as pre
from services.messenger.repository import EPOCH, SCHEMA
from shared.consumer import Delivery
from shared.events.outreach import SendStep

StepKey = tuple[str, int]
Hold = tuple[Delivery, SendStep, pre.Awaiting, datetime]
# Advisory lock space (two-int form, apart from the one-key locks of the outbox relay).
LOCK_SPACE = 0x68656C64
LOCK_BUCKETS = 1024  # a power of two


def _keys(keys: Sequence[StepKey]) -> dict[str, list[Any]]:
    return {"s": [k[0] for k in keys], "n": [k[1] for k in keys]}


async def arrived(session: AsyncSession, patient_keys: Iterable[str]) -> dict[str, pre.Arrived]:
    keys = sorted(set(patient_keys))
    if not keys:
        return {}
    rows = (
        await session.execute(
            text(
                f"SELECT patient_key, source_updated_at > :epoch AS demographics, "
                f"(marketing_sms_at IS NOT NULL OR marketing_email_at IS NOT NULL) AS consent "
                f"FROM {SCHEMA}.contacts "
                "WHERE patient_key = ANY(:pks)"
            ),
            {"pks": keys, "epoch": EPOCH},
        )
    ).all()
    return {r[0]: pre.Arrived(bool(r[1]), bool(r[2])) for r in rows}


async def waiting(session: AsyncSession, keys: Sequence[StepKey]) -> dict[StepKey, datetime]:
    """Steps already waiting, with the end of their wait (fixed when first held)."""
    if not keys:
        return {}
    rows = (
        await session.execute(
            text(
                f"SELECT h.sequence_id, h.step, h.give_up_at FROM {SCHEMA}.held_steps h "
                "JOIN unnest(CAST(:s AS text[]), CAST(:n AS int[])) AS k(s, n) "
                "ON h.sequence_id = k.s AND h.step = k.n WHERE h.status = 'waiting'"
            ),
            _keys(keys),
        )
    ).all()
    return {(r[0], r[1]): r[2] for r in rows}


async def hold(session: AsyncSession, holds: Sequence[Hold], now: datetime) -> None:
    """Keep each step (its envelope as consumed) until ``give_up_at``; a step held again keeps
    the end of its first wait."""
    if not holds:
        return
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.held_steps (sequence_id, step, clinic_id, patient_key, "
            "waiting_for, command, trace_headers, held_at, give_up_at, status) "
            "VALUES (:s, :n, :c, :pk, :w, :cmd, CAST(:th AS jsonb), :now, :until, 'waiting') "
            "ON CONFLICT (sequence_id, step) DO UPDATE SET waiting_for = EXCLUDED.waiting_for, "
            "command = EXCLUDED.command, trace_headers = EXCLUDED.trace_headers, "
            "status = 'waiting', reason = NULL, why = NULL, settled_at = NULL"
        ),
        [
            {
                "s": cmd.sequence_id,
                "n": cmd.step,
                "c": d.envelope.clinic_id,
                "pk": d.envelope.patient_key,
                "w": what.value,
                "cmd": d.envelope.to_bytes().decode(),
                "th": json.dumps(d.trace_headers),
                "now": now,
                "until": until,
            }
            for d, cmd, what, until in holds
        ],
    )


async def drop(session: AsyncSession, keys: Sequence[StepKey]) -> None:
    if keys:
        await session.execute(
            text(
                f"DELETE FROM {SCHEMA}.held_steps h USING unnest(CAST(:s AS text[]), "
                "CAST(:n AS int[])) AS k(s, n) WHERE h.sequence_id = k.s AND h.step = k.n"
            ),
            _keys(keys),
        )


async def drop_sequence(session: AsyncSession, sequence_id: str) -> None:
    """A stopped sequence's steps no longer wait (blocked ones stay listed for staff)."""
    await session.execute(
        text(f"DELETE FROM {SCHEMA}.held_steps WHERE sequence_id = :s AND status = 'waiting'"),
        {"s": sequence_id},
    )


async def mark_blocked(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Rows of ``s``, ``n``, ``r`` (reason), ``why``, ``now``."""
    if rows:
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.held_steps SET status = 'blocked', reason = :r, why = :why, "
                "settled_at = :now WHERE sequence_id = :s AND step = :n"
            ),
            list(rows),
        )


async def lock(session: AsyncSession, patient_keys: Iterable[str]) -> None:
    """Transaction-scoped advisory locks on these patients, always taken in one order. Patients
    share ``LOCK_BUCKETS`` locks, so a batch of any size takes a bounded number of them."""
    await session.execute(
        text(
            "SELECT pg_advisory_xact_lock(:space, b) FROM (SELECT DISTINCT "
            "hashtext(k) & :mask AS b FROM unnest(CAST(:pks AS text[])) AS k ORDER BY b) AS o"
        ),
        {"space": LOCK_SPACE, "pks": sorted(set(patient_keys)), "mask": LOCK_BUCKETS - 1},
    )


async def due_now(
    session: AsyncSession, patient_keys: Sequence[str], kind: str, now: datetime
) -> None:
    """Move the timers of these patients' waiting steps to ``now``."""
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.timers t SET due_at = :now FROM {SCHEMA}.held_steps h "
            "WHERE h.patient_key = ANY(:pks) AND h.status = 'waiting' AND t.kind = :kind "
            "AND t.timer_key = h.sequence_id || ':' || h.step::text AND t.due_at > :now"
        ),
        {"pks": list(patient_keys), "now": now, "kind": kind},
    )


async def commands(session: AsyncSession, keys: Sequence[StepKey]) -> list[tuple[str, Any]]:
    """(SendStep envelope, trace headers) of these steps, if still waiting."""
    rows = (
        await session.execute(
            text(
                f"SELECT h.command, h.trace_headers FROM {SCHEMA}.held_steps h "
                "JOIN unnest(CAST(:s AS text[]), CAST(:n AS int[])) AS k(s, n) "
                "ON h.sequence_id = k.s AND h.step = k.n WHERE h.status = 'waiting'"
            ),
            _keys(keys),
        )
    ).all()
    return [(r[0], r[1]) for r in rows]


async def listing(
    session: AsyncSession, clinic_id: str | None, status: str, limit: int
) -> list[dict[str, Any]]:
    """Held steps for staff: patient key, step, what it waits for, until when, and why blocked."""
    where = "status = :status" + (" AND clinic_id = :c" if clinic_id else "")
    rows = (
        await session.execute(
            text(
                "SELECT clinic_id, patient_key, sequence_id, step, waiting_for, held_at, "
                f"give_up_at, status, reason, why, settled_at FROM {SCHEMA}.held_steps "
                f"WHERE {where} ORDER BY held_at, sequence_id, step LIMIT :limit"
            ),
            {"status": status, "c": clinic_id, "limit": limit},
        )
    ).all()
    return [dict(r._mapping) for r in rows]
