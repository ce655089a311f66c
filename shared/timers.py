"""Durable due-timers: rows with a ``due_at``, never sleeps.

A timer is scheduled in the caller's transaction (so it exists exactly when the state that
needs it does) and fired by a poller that claims due rows with ``FOR UPDATE SKIP LOCKED``, so
several replicas share the work without firing one timer twice. "Due" is judged by
``shared.clock``, so a controlled clock moved forward fires timers at once.

Failures stay with the timer that failed. A batch whose handler fails is fired again one
timer at a time; a timer that still fails is retried after a capped, jittered backoff (in real
time: ``retry_at``, so a frozen controlled clock does not freeze retries) and, after
``max_attempts`` deterministic failures, parked with its error for a person to read and re-arm
(``Timers.parked`` / ``Timers.rearm``, the ops API's ``/admin/timers``). A transient failure
(``shared.faults``) is never counted towards parking: the database coming back fixes it.

A timer whose work calls the outside world (an EHR) is a ``TimerWork``: the poller claims it
(a lease in ``retry_at``, committed), reads what the call needs, calls with no transaction
open, then records the outcome and deletes the timer in one transaction. A failing neighbour
never makes it call twice; a crash between call and record calls again after the lease, so the
call must be idempotent (a search, a booking keyed by its request). The poller is in
``shared.timer_poller``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession


@dataclass(frozen=True)
class Timer:
    id: int
    kind: str
    key: str
    due_at: datetime
    patient_key: str | None
    payload: Mapping[str, Any] = field(default_factory=dict)


TimerHandler = Callable[[AsyncSession, Sequence[Timer]], Awaitable[None]]


@runtime_checkable
class TimerWork(Protocol):
    """A timer whose work calls outside: prepare (read), call (no transaction), record."""

    async def prepare(self, session: AsyncSession, timer: Timer) -> Any:
        """Read what the call needs (its own short transaction; nothing is locked after)."""

    async def call(self, timer: Timer, prepared: Any) -> Any:
        """Call the outside world with no transaction open; must be idempotent."""

    async def record(self, session: AsyncSession, timer: Timer, prepared: Any, result: Any) -> None:
        """Record the outcome (the timer is deleted in the same transaction)."""


# What a timer kind is fired with: a batch handler, or a TimerWork for work that calls outside.
TimerAction = TimerHandler | TimerWork


@dataclass(frozen=True)
class ParkedTimer:
    id: int
    kind: str
    key: str
    due_at: datetime
    attempts: int
    last_error: str
    parked_at: datetime


class Timers:
    """Schedule and cancel timers in one service schema."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._upsert = text(
            f"INSERT INTO {schema}.timers (kind, timer_key, due_at, patient_key, payload) "
            "VALUES (:kind, :key, :due_at, :patient_key, CAST(:payload AS jsonb)) "
            "ON CONFLICT (kind, timer_key) DO UPDATE SET due_at = EXCLUDED.due_at, "
            "payload = EXCLUDED.payload, patient_key = EXCLUDED.patient_key, "
            # Scheduled anew by the state that needs it: a fresh timer, whatever the old one's
            # failures were.
            "attempts = 0, last_error = NULL, retry_at = NULL, parked_at = NULL"
        )
        self._cancel = text(f"DELETE FROM {schema}.timers WHERE kind = :kind AND timer_key = :key")

    async def schedule(
        self,
        session: AsyncSession | AsyncConnection,
        kind: str,
        key: str,
        due_at: datetime,
        *,
        patient_key: str | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        """Create or move the timer ``(kind, key)``; scheduling twice keeps one timer."""
        if due_at.tzinfo is None:
            raise ValueError("timers need a time zone aware due_at")
        await session.execute(
            self._upsert,
            {
                "kind": kind,
                "key": key,
                "due_at": due_at,
                "patient_key": patient_key,
                "payload": json.dumps(dict(payload or {}), default=str),
            },
        )

    async def cancel(self, session: AsyncSession | AsyncConnection, kind: str, key: str) -> None:
        await session.execute(self._cancel, {"kind": kind, "key": key})

    async def parked(self, engine: AsyncEngine, limit: int = 200) -> list[ParkedTimer]:
        """Timers that failed too often, oldest first (no payload: it may name a patient)."""
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    f"SELECT id, kind, timer_key, due_at, attempts, last_error, parked_at "
                    f"FROM {self.schema}.timers WHERE parked_at IS NOT NULL "
                    "ORDER BY parked_at, id LIMIT :n"
                ),
                {"n": limit},
            )
            return [
                ParkedTimer(
                    r.id, r.kind, r.timer_key, r.due_at, r.attempts, r.last_error or "", r.parked_at
                )
                for r in rows
            ]

    async def rearm(self, engine: AsyncEngine, timer_id: int) -> bool:
        """Fire a parked timer again now, with a fresh budget of attempts."""
        async with engine.begin() as conn:
            found = await conn.execute(
                text(
                    f"UPDATE {self.schema}.timers SET parked_at = NULL, retry_at = NULL, "
                    "attempts = 0 WHERE id = :i AND parked_at IS NOT NULL RETURNING 1"
                ),
                {"i": timer_id},
            )
            return found.first() is not None
