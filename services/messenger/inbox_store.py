"""The staff inbox's storage: conversations whose replies need a person, who handled or took
each, and who wrote each staff reply. The reply words stay where every message's are
(``inbound`` and ``outgoing``); this module adds who and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.domain.staff_reply import NEEDS_A_PERSON
from services.messenger.repository import SCHEMA

_OPEN = f"""
    WITH waiting AS (
        SELECT i.patient_key, i.message_id, i.channel, i.body, i.intent, i.barrier, i.red_flags,
               i.received_at,
               count(*) OVER (PARTITION BY i.patient_key) AS waiting_replies,
               min(i.received_at) OVER (PARTITION BY i.patient_key) AS waiting_since,
               bool_or(i.intent = 'red_flag') OVER (PARTITION BY i.patient_key) AS red_flag,
               row_number() OVER (PARTITION BY i.patient_key ORDER BY i.received_at DESC,
                                  i.message_id DESC) AS newest
        FROM {SCHEMA}.inbound i
        LEFT JOIN {SCHEMA}.inbox_conversations c ON c.patient_key = i.patient_key
        WHERE i.clinic_id = :c AND i.patient_key IS NOT NULL
          AND (i.intent = ANY(:intents) OR i.barrier IS NOT NULL)
          AND (c.handled_through IS NULL OR i.received_at > c.handled_through)
    )
    SELECT w.patient_key, w.message_id, w.channel, w.body, w.intent, w.barrier, w.red_flags,
           w.received_at, w.waiting_replies, w.waiting_since, w.red_flag, c.assigned_to
    FROM waiting w
    LEFT JOIN {SCHEMA}.inbox_conversations c ON c.patient_key = w.patient_key
    WHERE w.newest = 1 AND (CAST(:to AS text) IS NULL OR c.assigned_to = :to)
    ORDER BY w.red_flag DESC, w.waiting_since, w.patient_key
    LIMIT :n
"""


async def waiting(
    session: AsyncSession, clinic_id: str, *, assigned_to: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Conversations with replies nobody handled yet: red flags first, then the longest waiting;
    each with its newest such reply."""
    rows = await session.execute(
        text(_OPEN),
        {"c": clinic_id, "intents": list(NEEDS_A_PERSON), "to": assigned_to, "n": limit},
    )
    return [dict(r._mapping) for r in rows]


async def handled(session: AsyncSession, clinic_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """Conversations handled lately, newest first."""
    rows = await session.execute(
        text(
            "SELECT patient_key, assigned_to, handled_through, handled_by, handled_at "
            f"FROM {SCHEMA}.inbox_conversations WHERE clinic_id = :c AND handled_at IS NOT NULL "
            "ORDER BY handled_at DESC, patient_key LIMIT :n"
        ),
        {"c": clinic_id, "n": limit},
    )
    return [dict(r._mapping) for r in rows]


async def state_of(session: AsyncSession, patient_key: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(
                "SELECT assigned_to, assigned_by, handled_through, handled_by, handled_at "
                f"FROM {SCHEMA}.inbox_conversations WHERE patient_key = :pk"
            ),
            {"pk": patient_key},
        )
    ).first()
    return dict(row._mapping) if row is not None else None


async def authors(session: AsyncSession, patient_key: str) -> dict[str, str]:
    """Staff reply message id -> who wrote it."""
    rows = await session.execute(
        text(f"SELECT message_id, author FROM {SCHEMA}.staff_replies WHERE patient_key = :pk"),
        {"pk": patient_key},
    )
    return {r[0]: r[1] for r in rows}


async def latest_inbound(session: AsyncSession, patient_key: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(
                f"SELECT message_id, channel, provider, received_at FROM {SCHEMA}.inbound "
                "WHERE patient_key = :pk ORDER BY received_at DESC, message_id DESC LIMIT 1"
            ),
            {"pk": patient_key},
        )
    ).first()
    return dict(row._mapping) if row is not None else None


async def latest_send_window(session: AsyncSession, patient_key: str) -> Any:
    """The send window (the clinic's outreach policy, the zone and state it was planned in) of
    the patient's latest outreach message: a staff reply keeps to the same hours."""
    return (
        await session.execute(
            text(
                f"SELECT send_window FROM {SCHEMA}.outgoing WHERE patient_key = :pk "
                "AND send_window IS NOT NULL ORDER BY created_at DESC LIMIT 1"
            ),
            {"pk": patient_key},
        )
    ).scalar()


async def record_staff_reply(
    session: AsyncSession,
    *,
    message_id: str,
    clinic_id: str,
    patient_key: str,
    in_reply_to: str | None,
    author: str,
    at: datetime,
) -> bool:
    """Who wrote a reply; False when this reply (same form) was recorded before."""
    row = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.staff_replies (message_id, clinic_id, patient_key, "
                "in_reply_to, author, created_at) VALUES (:m, :c, :pk, :r, :a, :at) "
                "ON CONFLICT (message_id) DO NOTHING RETURNING 1"
            ),
            {
                "m": message_id,
                "c": clinic_id,
                "pk": patient_key,
                "r": in_reply_to,
                "a": author,
                "at": at,
            },
        )
    ).first()
    return row is not None


async def mark_handled(
    session: AsyncSession,
    clinic_id: str,
    patient_key: str,
    through: datetime,
    by: str,
    at: datetime,
) -> None:
    """Every reply up to ``through`` is handled; a later one reopens the conversation."""
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.inbox_conversations (patient_key, clinic_id, handled_through, "
            "handled_by, handled_at, updated_at) VALUES (:pk, :c, :t, :by, :at, :at) "
            "ON CONFLICT (patient_key) DO UPDATE SET handled_through = greatest("
            f"{SCHEMA}.inbox_conversations.handled_through, EXCLUDED.handled_through), "
            "handled_by = EXCLUDED.handled_by, handled_at = EXCLUDED.handled_at, "
            "updated_at = EXCLUDED.updated_at"
        ),
        {"pk": patient_key, "c": clinic_id, "t": through, "by": by, "at": at},
    )


async def assign(
    session: AsyncSession,
    clinic_id: str,
    patient_key: str,
    assignee: str | None,
    by: str,
    at: datetime,
) -> None:
    """Give the conversation to a colleague (None: to nobody in particular)."""
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.inbox_conversations (patient_key, clinic_id, assigned_to, "
            "assigned_by, updated_at) VALUES (:pk, :c, :to, :by, :at) "
            "ON CONFLICT (patient_key) DO UPDATE SET assigned_to = EXCLUDED.assigned_to, "
            "assigned_by = EXCLUDED.assigned_by, updated_at = EXCLUDED.updated_at"
        ),
        {"pk": patient_key, "c": clinic_id, "to": assignee, "by": by, "at": at},
    )
