"""Durable due-timers: rows with a ``due_at``, never sleeps.

A timer is scheduled in the caller's transaction (so it exists exactly when the state that
needs it does) and fired by a poller that claims due rows with ``FOR UPDATE SKIP LOCKED``, so
several replicas share the work without firing one timer twice. "Due" is judged by
``shared.clock``, so a controlled clock moved forward fires timers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from shared.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timer:
    id: int
    kind: str
    key: str
    due_at: datetime
    patient_key: str | None
    payload: Mapping[str, Any] = field(default_factory=dict)


TimerHandler = Callable[[AsyncSession, Sequence[Timer]], Awaitable[None]]


class Timers:
    """Schedule and cancel timers in one service schema."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._upsert = text(
            f"INSERT INTO {schema}.timers (kind, timer_key, due_at, patient_key, payload) "
            "VALUES (:kind, :key, :due_at, :patient_key, CAST(:payload AS jsonb)) "
            "ON CONFLICT (kind, timer_key) DO UPDATE SET due_at = EXCLUDED.due_at, "
            "payload = EXCLUDED.payload, patient_key = EXCLUDED.patient_key"
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


class TimerPoller:
    """Fires due timers: claims a batch, calls the handler for their kind, deletes them.

    Handler, deletion and any events the handler stages commit together; a handler that fails
    leaves its timers in place to be retried on the next poll.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        schema: str,
        clock: Clock,
        handlers: Mapping[str, TimerHandler],
        *,
        batch_size: int = 500,
        poll_interval: float = 0.25,
        on_fired: Callable[[int], object] | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.handlers = dict(handlers)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.fired = 0
        self._on_fired = on_fired
        self._wake = asyncio.Event()
        self._claim = text(
            f"SELECT id, kind, timer_key, due_at, patient_key, payload FROM {schema}.timers "
            "WHERE due_at <= :now AND kind = ANY(:kinds) ORDER BY due_at, id LIMIT :n "
            "FOR UPDATE SKIP LOCKED"
        )
        self._delete = text(f"DELETE FROM {schema}.timers WHERE id = ANY(:ids)")

    def wake(self) -> None:
        self._wake.set()

    async def fire_due(self) -> int:
        """Fire one batch of due timers; returns how many fired."""
        async with self.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    self._claim,
                    {"now": self.clock.now(), "kinds": list(self.handlers), "n": self.batch_size},
                )
            ).all()
            if not rows:
                return 0
            timers = [
                Timer(r.id, r.kind, r.timer_key, r.due_at, r.patient_key, r.payload or {})
                for r in rows
            ]
            by_kind: dict[str, list[Timer]] = {}
            for timer in timers:
                by_kind.setdefault(timer.kind, []).append(timer)
            # Delete first: a handler may re-schedule the same (kind, key) for a later time.
            await session.execute(self._delete, {"ids": [t.id for t in timers]})
            for kind, batch in by_kind.items():
                await self.handlers[kind](session, batch)
        self.fired += len(timers)
        if self._on_fired is not None:
            self._on_fired(len(timers))
        return len(timers)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Cleared before polling, not after: a wake-up that arrives while a batch fires
            # (a clock move, a timer scheduled meanwhile) must trigger the next poll.
            self._wake.clear()
            try:
                fired = await self.fire_due()
            except Exception as exc:
                log.error("timer batch failed; will retry", extra={"error": type(exc).__name__})
                fired = 0
                await asyncio.sleep(1.0)
            if fired < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)
