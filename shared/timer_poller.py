"""Firing durable timers: claim due rows, call their kind's handler, delete them.

Failures stay with the timer that failed (see ``shared.timers`` for the whole story): a batch
whose handler fails is fired again one timer at a time; a timer that still fails is retried
after a capped, jittered backoff in real time and parked after ``max_attempts`` deterministic
failures; a ``TimerWork`` is claimed and leased (committed), prepared, called with no
transaction open, then recorded with its deletion in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import Clock
from shared.faults import Backoff, HandlerFailed, is_transient, sqlstate
from shared.timers import Timer, TimerAction, TimerWork

log = logging.getLogger(__name__)


class TimerPoller:
    """Fires due timers: claims a batch, calls the handler for their kind, deletes them.

    Handler, deletion and any events the handler stages commit together. See the module
    docstring for what happens when a handler fails.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        schema: str,
        clock: Clock,
        handlers: Mapping[str, TimerAction],
        *,
        batch_size: int = 500,
        poll_interval: float = 0.25,
        on_fired: Callable[[int], object] | None = None,
        max_attempts: int = 8,
        lease_s: float = 120.0,
        on_failed: Callable[[str, str], object] | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.handlers = dict(handlers)
        self._works = frozenset(k for k, h in self.handlers.items() if isinstance(h, TimerWork))
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.lease_s = lease_s
        self.backoff = Backoff(base=1.0, cap=300.0)
        self.fired = 0
        self._on_fired = on_fired
        self._on_failed = on_failed
        self._wake = asyncio.Event()
        self._claim = text(
            f"SELECT id, kind, timer_key, due_at, patient_key, payload, attempts "
            f"FROM {schema}.timers WHERE due_at <= :now AND kind = ANY(:kinds) "
            "AND parked_at IS NULL AND (retry_at IS NULL OR retry_at <= now()) "
            "ORDER BY due_at, id LIMIT :n FOR UPDATE SKIP LOCKED"
        )
        self._delete = text(f"DELETE FROM {schema}.timers WHERE id = ANY(:ids)")
        # A called-out timer scheduled anew while its call ran (another due_at) is kept.
        self._delete_called = text(f"DELETE FROM {schema}.timers WHERE id = :id AND due_at = :due")
        self._lease = text(
            f"UPDATE {schema}.timers SET retry_at = now() + make_interval(secs => :s) "
            "WHERE id = ANY(:ids)"
        )
        self._lock_one = text(
            f"SELECT id, attempts FROM {schema}.timers WHERE id = :id AND parked_at IS NULL "
            "FOR UPDATE SKIP LOCKED"
        )
        self._failed = text(
            f"UPDATE {schema}.timers SET attempts = attempts + :counted, last_error = :err, "
            "retry_at = now() + make_interval(secs => :wait), "
            "parked_at = CASE WHEN :park THEN now() ELSE NULL END WHERE id = :id"
        )

    def wake(self) -> None:
        self._wake.set()

    async def fire_due(self) -> int:
        """Fire one batch of due timers; returns how many fired (failed ones excluded)."""
        works = self._works
        attempts: dict[int, int] = {}
        try:
            async with self.sessions() as session, session.begin():
                rows = (
                    await session.execute(
                        self._claim,
                        {
                            "now": self.clock.now(),
                            "kinds": list(self.handlers),
                            "n": self.batch_size,
                        },
                    )
                ).all()
                if not rows:
                    return 0
                timers = [
                    Timer(r.id, r.kind, r.timer_key, r.due_at, r.patient_key, r.payload or {})
                    for r in rows
                ]
                attempts = {r.id: r.attempts for r in rows}
                calling = [t for t in timers if t.kind in works]
                plain = [t for t in timers if t.kind not in works]
                if calling:  # leased, not deleted: they are recorded after their call
                    await session.execute(
                        self._lease, {"ids": [t.id for t in calling], "s": self.lease_s}
                    )
                # Delete first: a handler may re-schedule the same (kind, key) for a later time.
                await session.execute(self._delete, {"ids": [t.id for t in plain]})
                await self._handle(session, plain)
            fired = len(plain)
        except Exception as exc:
            if is_transient(exc) or not attempts:
                raise
            # One timer broke the batch: each goes alone, so only that one is held back. The
            # calling ones lost their lease with the rollback: the next poll claims them.
            calling, fired = [], 0
            for timer in timers:
                if timer.kind not in works:
                    fired += await self._fire_alone(timer, attempts[timer.id])
        for timer in calling:
            fired += await self._call_out(timer, attempts[timer.id])
        self.fired += fired
        if self._on_fired is not None and fired:
            self._on_fired(fired)
        return fired

    async def _handle(self, session: AsyncSession, timers: Sequence[Timer]) -> None:
        by_kind: dict[str, list[Timer]] = {}
        for timer in timers:
            by_kind.setdefault(timer.kind, []).append(timer)
        for kind, batch in by_kind.items():
            handler = self.handlers[kind]
            assert not isinstance(handler, TimerWork)
            await handler(session, batch)

    async def _fire_alone(self, timer: Timer, attempts: int) -> int:
        try:
            async with self.sessions() as session, session.begin():
                if (await session.execute(self._lock_one, {"id": timer.id})).first() is None:
                    return 0  # another poller has it, or it was cancelled meanwhile
                await session.execute(self._delete, {"ids": [timer.id]})
                await self._handle(session, [timer])
            return 1
        except Exception as exc:
            if is_transient(exc):
                raise
            await self._failure(timer, attempts, exc)
            return 0

    async def _call_out(self, timer: Timer, attempts: int) -> int:
        work = self.handlers[timer.kind]
        assert isinstance(work, TimerWork)
        try:
            async with self.sessions() as session, session.begin():
                prepared = await work.prepare(session, timer)
            result = await work.call(timer, prepared)
            async with self.sessions() as session, session.begin():
                await session.execute(self._delete_called, {"id": timer.id, "due": timer.due_at})
                await work.record(session, timer, prepared, result)
            return 1
        except Exception as exc:
            await self._failure(timer, attempts, exc)
            return 0

    async def _failure(self, timer: Timer, attempts: int, exc: BaseException) -> None:
        transient = is_transient(exc)
        counted = 0 if transient else 1
        park = not transient and attempts + 1 >= self.max_attempts
        wait = self.backoff.delay(attempts)
        log.error(
            "timer failed; parked" if park else "timer failed; will retry",
            extra={
                "kind": timer.kind,
                "timer_id": timer.id,
                "error": type(exc).__name__,
                "attempts": attempts + counted,
                "retry_in_s": None if park else round(wait, 1),
            },
        )
        if self._on_failed is not None:
            self._on_failed(timer.kind, "parked" if park else "retry")
        try:
            async with self.sessions() as session, session.begin():
                await session.execute(
                    self._failed,
                    {
                        "id": timer.id,
                        "counted": counted,
                        "err": describe(exc),
                        "wait": wait,
                        "park": park,
                    },
                )
        except Exception as again:
            if not is_transient(again):
                raise
            # The database went away meanwhile: the timer is simply due again when it is back.

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            # Cleared before polling, not after: a wake-up that arrives while a batch fires
            # (a clock move, a timer scheduled meanwhile) must trigger the next poll.
            self._wake.clear()
            try:
                fired = await self.fire_due()
                failures = 0
            except Exception as exc:
                if not is_transient(exc):
                    raise  # a bug in the poller itself: the supervisor restarts it
                wait = self.backoff.delay(failures)
                failures += 1
                log.warning(
                    "timers unavailable; will retry",
                    extra={"error": type(exc).__name__, "retry_in_s": round(wait, 2)},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=min(wait, 5.0))
                continue
            if fired < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)


def describe(exc: BaseException) -> str:
    """What went wrong, without data: the class, the SQLSTATE, and our own PHI-free message."""
    parts = [type(exc).__name__]
    if code := sqlstate(exc):
        parts.append(f"SQLSTATE {code}")
    if isinstance(exc, HandlerFailed):
        parts.append(str(exc)[:500])
    return ": ".join(parts)
