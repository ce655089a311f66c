"""The dispatcher's side of the send queue: taking queued messages, leasing them while a
provider is called (database wall-clock leases, so a crashed sender's messages are found again),
and recording each outcome only if the lease is still this attempt's. Also the lookups the
status callbacks and the ops API need."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.repository import SCHEMA


async def take_queued(
    session: AsyncSession, providers: Sequence[str], limit: int
) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            text(
                f"SELECT * FROM {SCHEMA}.outgoing WHERE status = 'queued' AND "
                "provider = ANY(:p) AND available_at <= now() ORDER BY priority, seq "
                "LIMIT :n FOR UPDATE SKIP LOCKED"
            ),
            {"p": list(providers), "n": limit},
        )
    ).all()
    return [dict(r._mapping) for r in rows]


async def mark(
    session: AsyncSession,
    message_ids: Sequence[str],
    status: str,
    *,
    failure: str | None = None,
) -> None:
    if message_ids:
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.outgoing SET status = :st, failure = coalesce(:f, failure), "
                "updated_at = now() WHERE message_id = ANY(:ids)"
            ),
            {"st": status, "f": failure, "ids": list(message_ids)},
        )


async def lease(session: AsyncSession, message_ids: Sequence[str], seconds: float) -> None:
    """Mark messages as being sent now, leased for ``seconds`` (database wall clock)."""
    if message_ids:
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.outgoing SET status = 'sending', attempts = attempts + 1, "
                "attempted_at = coalesce(attempted_at, now()), "
                "lease_until = now() + make_interval(secs => :sec), updated_at = now() "
                "WHERE message_id = ANY(:ids)"
            ),
            {"ids": list(message_ids), "sec": seconds},
        )


async def record_sent(
    session: AsyncSession, message_id: str, attempts: int, provider_message_id: str, at: datetime
) -> bool:
    """sending -> sent, only if the row is still this attempt's (a reconciler may own it)."""
    row = (
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.outgoing SET status = 'sent', provider_message_id = :pid, "
                "sent_at = :at, lease_until = NULL, updated_at = now() WHERE message_id = :m "
                # A row the reconciler re-queued meanwhile is settled too: it must not go twice.
                "AND ((status = 'sending' AND attempts = :a) OR status = 'queued') RETURNING 1"
            ),
            {"pid": provider_message_id, "at": at, "m": message_id, "a": attempts},
        )
    ).first()
    return row is not None


async def record_sent_many(
    session: AsyncSession, sent: Sequence[tuple[str, int, str]], at: datetime
) -> set[str]:
    """``record_sent`` for a batch of (message_id, attempts, provider_message_id)."""
    if not sent:
        return set()
    rows = (
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.outgoing o SET status = 'sent', provider_message_id = v.pid, "
                "sent_at = :at, lease_until = NULL, updated_at = now() FROM unnest("
                "CAST(:m AS text[]), CAST(:a AS int[]), CAST(:p AS text[])) AS v(m, a, pid) "
                "WHERE o.message_id = v.m AND ((o.status = 'sending' AND o.attempts = v.a) "
                "OR o.status = 'queued') RETURNING o.message_id"
            ),
            {
                "m": [s[0] for s in sent],
                "a": [s[1] for s in sent],
                "p": [s[2] for s in sent],
                "at": at,
            },
        )
    ).all()
    return {r[0] for r in rows}


async def record_outcome(
    session: AsyncSession,
    message_id: str,
    attempts: int,
    status: str,
    *,
    failure: str | None = None,
    retry_in_s: float = 0.0,
) -> bool:
    row = (
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.outgoing SET status = :st, failure = :f, "
                "available_at = now() + make_interval(secs => :r), "
                "lease_until = CASE WHEN :st = 'sending' THEN now() + make_interval(secs => :r) "
                "ELSE NULL END, "
                "updated_at = now() WHERE message_id = :m AND status = 'sending' "
                "AND attempts = :a RETURNING 1"
            ),
            {"st": status, "f": failure, "r": retry_in_s, "m": message_id, "a": attempts},
        )
    ).first()
    return row is not None


async def take_expired_leases(
    session: AsyncSession, providers: Sequence[str], lease_s: float, limit: int = 100
) -> list[dict[str, Any]]:
    """In-flight messages whose lease ran out (a crash, a hang); re-leased to the caller."""
    rows = (
        await session.execute(
            text(
                f"SELECT * FROM {SCHEMA}.outgoing WHERE status = 'sending' AND "
                "lease_until < now() AND provider = ANY(:p) ORDER BY lease_until LIMIT :n "
                "FOR UPDATE SKIP LOCKED"
            ),
            {"p": list(providers), "n": limit},
        )
    ).all()
    found = [dict(r._mapping) for r in rows]
    if found:
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.outgoing SET lease_until = now() + make_interval(secs => :s), "
                "reconcile_attempts = reconcile_attempts + 1 WHERE message_id = ANY(:ids)"
            ),
            {"s": lease_s, "ids": [m["message_id"] for m in found]},
        )
    return found


async def lookup_hints(
    session: AsyncSession, row: dict[str, Any], window_days: int = 2
) -> tuple[frozenset[str], int]:
    """(provider ids other recent sends to this address hold, sends to it in doubt now)."""
    found = (
        await session.execute(
            text(
                f"SELECT provider_message_id, status FROM {SCHEMA}.outgoing WHERE provider = :p "
                "AND address = :a AND updated_at > now() - make_interval(days => :d) "
                "AND (provider_message_id IS NOT NULL OR status = 'sending')"
            ),
            {"p": row["provider"], "a": row["address"], "d": window_days},
        )
    ).all()
    attributed = frozenset(r[0] for r in found if r[0])
    in_doubt = sum(1 for r in found if r[1] == "sending" and not r[0])
    return attributed, max(1, in_doubt)


async def bind_by_ref(
    session: AsyncSession, provider: str, ref: str, provider_message_id: str, at: datetime
) -> dict[str, Any] | None:
    """A provider's status callback named this send (``ref``): it took it, under this id.
    Settles a send still in doubt (sending, re-queued, or marked unknown) as sent."""
    row = (
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.outgoing SET status = 'sent', provider_message_id = :pid, "
                "sent_at = coalesce(sent_at, :at), lease_until = NULL, updated_at = now() "
                "WHERE send_ref = :ref AND provider = :p AND provider_message_id IS NULL "
                "AND status IN ('sending', 'queued', 'unknown') RETURNING *"
            ),
            {"pid": provider_message_id, "at": at, "ref": ref, "p": provider},
        )
    ).first()
    return dict(row._mapping) if row else None


async def requeue(session: AsyncSession, message_id: str) -> None:
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.outgoing SET status = 'queued', available_at = now(), "
            "lease_until = NULL, attempted_at = NULL, updated_at = now() "
            "WHERE message_id = :m AND status = 'sending'"
        ),
        {"m": message_id},
    )


async def by_provider_id(
    session: AsyncSession, provider: str, provider_message_id: str
) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(
                f"SELECT * FROM {SCHEMA}.outgoing WHERE provider = :p AND "
                "provider_message_id = :pid"
            ),
            {"p": provider, "pid": provider_message_id},
        )
    ).first()
    return dict(row._mapping) if row else None


async def by_message_id(session: AsyncSession, message_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(f"SELECT * FROM {SCHEMA}.outgoing WHERE message_id = :m"), {"m": message_id}
        )
    ).first()
    return dict(row._mapping) if row else None


async def provider_event_once(
    session: AsyncSession, provider: str, provider_message_id: str, status: str
) -> bool:
    row = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.provider_events (provider, provider_message_id, status) "
                "VALUES (:p, :pid, :s) ON CONFLICT DO NOTHING RETURNING 1"
            ),
            {"p": provider, "pid": provider_message_id, "s": status},
        )
    ).first()
    return row is not None


async def listing(
    session: AsyncSession, clinic_id: str | None, status: str, limit: int = 200
) -> list[dict[str, Any]]:
    clinic = " AND clinic_id = :c" if clinic_id else ""
    rows = (
        await session.execute(
            text(
                f"SELECT message_id, clinic_id, patient_key, kind, sequence_id, step, channel, "
                f"provider, status, attempts, failure, created_at, updated_at FROM "
                f"{SCHEMA}.outgoing WHERE status = :st{clinic} ORDER BY seq DESC LIMIT :n"
            ),
            {"st": status, "c": clinic_id, "n": limit},
        )
    ).all()
    return [dict(r._mapping) for r in rows]
