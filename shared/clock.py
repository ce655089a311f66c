"""Where every service reads "now".

Production uses the system clock. Tests and the simulator use the controlled clock: one row in
``platform.clock`` that every service reads, so a 30-day pilot runs in seconds with all services
agreeing on the time. The row stores an anchor (virtual time at a real instant) and a rate:
rate 0 is a frozen clock that only moves when advanced; rate 3600 runs an hour per second.
Services cache the row and reload it on a Postgres NOTIFY, so reading "now" costs no query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import PLATFORM_SCHEMA

CLOCK_CHANNEL = "revisit_clock"
log = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock for pure unit tests: it moves only when told."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def set(self, at: datetime) -> None:
        self._at = at


class ControlledClock:
    """The shared clock stored in Postgres; ``start()`` loads it and follows changes."""

    def __init__(self, engine: AsyncEngine, listen_dsn: str) -> None:
        self._engine = engine
        self._listen_dsn = listen_dsn
        self._virtual = datetime.now(UTC)
        self._real = time.time()
        self._rate = 1.0
        self._listener: asyncpg.Connection | None = None
        self._watchers: list[Callable[[], None]] = []
        self._reloads: set[asyncio.Task[None]] = set()

    def now(self) -> datetime:
        return self._virtual + timedelta(seconds=(time.time() - self._real) * self._rate)

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever the clock is set or advanced (timers wake on it)."""
        self._watchers.append(callback)

    async def start(self) -> None:
        await self.reload()
        await self._listen()

    async def _listen(self) -> None:
        self._listener = await asyncpg.connect(self._listen_dsn)
        await self._listener.add_listener(CLOCK_CHANNEL, self._notified)

    async def follow(self, stop: asyncio.Event, check_every_s: float = 1.0) -> None:
        """Keep following the clock across database restarts (a supervised loop).

        A restart drops the LISTEN connection silently, and a service would stay at the time
        it last heard forever; here the connection is opened again and the clock re-read (a
        change made meanwhile was never notified)."""
        while not stop.is_set():
            if self._listener is None or self._listener.is_closed():
                self._listener = None
                await self._listen()  # the database still away: the loop supervisor retries
                await self.reload()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=check_every_s)

    async def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.close(), timeout=2)
            self._listener = None

    def _notified(self, *_: object) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self._reloads.add(task)
        task.add_done_callback(self._reloaded)

    def _reloaded(self, task: asyncio.Task[None]) -> None:
        self._reloads.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The database went away between the NOTIFY and the read: follow() re-reads the
            # clock when it reconnects.
            log.warning("clock reload failed", extra={"error": type(task.exception()).__name__})

    async def reload(self) -> None:
        state = await read_clock(self._engine)
        self._virtual, self._real, self._rate = state
        for callback in self._watchers:
            callback()


async def read_clock(engine: AsyncEngine) -> tuple[datetime, float, float]:
    """The stored anchor, creating a frozen-at-real-now row if none exists."""
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    f"SELECT virtual_at, real_epoch, rate FROM {PLATFORM_SCHEMA}.clock WHERE id = 1"
                )
            )
        ).first()
        if row is None:
            now = datetime.now(UTC)
            await conn.execute(
                text(
                    f"INSERT INTO {PLATFORM_SCHEMA}.clock (id, virtual_at, real_epoch, rate) "
                    "VALUES (1, :v, :r, 1.0) ON CONFLICT (id) DO NOTHING"
                ),
                {"v": now, "r": time.time()},
            )
            return now, time.time(), 1.0
        virtual_at: datetime = row[0]
        return virtual_at, float(row[1]), float(row[2])


async def set_clock(engine: AsyncEngine, at: datetime, *, rate: float = 0.0) -> None:
    """Put the shared clock at ``at``, running at ``rate`` virtual seconds per real second."""
    if at.tzinfo is None:
        raise ValueError("the clock needs a time zone aware instant")
    if rate < 0:
        raise ValueError("the clock cannot run backwards")
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"INSERT INTO {PLATFORM_SCHEMA}.clock (id, virtual_at, real_epoch, rate) "
                "VALUES (1, :v, :r, :rate) ON CONFLICT (id) DO UPDATE "
                "SET virtual_at = :v, real_epoch = :r, rate = :rate"
            ),
            {"v": at.astimezone(UTC), "r": time.time(), "rate": rate},
        )
        await conn.execute(text("SELECT pg_notify(:c, '')"), {"c": CLOCK_CHANNEL})


async def current_time(engine: AsyncEngine) -> tuple[datetime, float]:
    """The shared clock's "now" and its rate, as every service following it reads them."""
    virtual, real, rate = await read_clock(engine)
    return virtual + timedelta(seconds=(time.time() - real) * rate), rate


async def advance_clock(engine: AsyncEngine, delta: timedelta) -> datetime:
    """Move the shared clock forward by ``delta`` and return the new "now"."""
    if delta < timedelta(0):
        raise ValueError("the clock only moves forward")
    current, rate = await current_time(engine)
    target = current + delta
    await set_clock(engine, target, rate=rate)
    return target
