"""A failing timer never holds up the others: retried with backoff, parked after N attempts.

Against the real Postgres, in a scratch schema with the backbone tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.clock import FixedClock
from shared.timer_poller import TimerPoller
from shared.timers import Timer, Timers
from tests.integration.conftest import Scratch

pytestmark = pytest.mark.integration

T = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


async def _schedule(
    sessions: async_sessionmaker[AsyncSession], timers: Timers, *keys: str, kind: str = "remind"
) -> None:
    async with sessions() as session, session.begin():
        for key in keys:
            await timers.schedule(session, kind, key, T)


def _writer(scratch: Scratch, poison: set[str]) -> Any:
    calls: list[list[str]] = []

    async def handle(session: AsyncSession, timers: Sequence[Timer]) -> None:
        calls.append([t.key for t in timers])
        await session.execute(
            text(f"INSERT INTO {scratch.schema}.effects (consumer, ref) VALUES ('t', :ref)"),
            [{"ref": t.key} for t in timers],
        )
        if any(t.key in poison for t in timers):
            raise ValueError("this reminder cannot be built")

    handle.calls = calls  # type: ignore[attr-defined]
    return handle


async def _rows(scratch: Scratch) -> dict[str, dict[str, Any]]:
    async with scratch.engine.connect() as conn:
        rows = await conn.execute(
            text(
                f"SELECT timer_key, attempts, last_error, parked_at, retry_at "
                f"FROM {scratch.schema}.timers"
            )
        )
        return {r.timer_key: dict(r._mapping) for r in rows}


async def test_a_failing_timer_is_retried_later_and_never_holds_up_the_others(
    scratch: Scratch, sessions: async_sessionmaker[AsyncSession]
) -> None:
    timers = Timers(scratch.schema)
    await _schedule(sessions, timers, "a", "poison", "b")
    handler = _writer(scratch, {"poison"})
    poller = TimerPoller(sessions, scratch.schema, FixedClock(T), {"remind": handler})

    fired = await poller.fire_due()

    assert fired == 2
    assert sorted(await scratch.effects()) == ["a", "b"]  # the poison's effect rolled back
    left = await _rows(scratch)
    assert list(left) == ["poison"]
    assert left["poison"]["attempts"] == 1
    assert "ValueError" in left["poison"]["last_error"]
    assert left["poison"]["parked_at"] is None
    assert left["poison"]["retry_at"] is not None  # waits a backoff, in real time
    assert await poller.fire_due() == 0  # not again at once: it waits its backoff


async def test_a_timer_that_keeps_failing_is_parked_with_its_error_and_can_be_rearmed(
    scratch: Scratch, sessions: async_sessionmaker[AsyncSession]
) -> None:
    timers = Timers(scratch.schema)
    await _schedule(sessions, timers, "poison", "fine")
    poison = {"poison"}
    handler = _writer(scratch, poison)
    poller = TimerPoller(
        sessions, scratch.schema, FixedClock(T), {"remind": handler}, max_attempts=3
    )
    poller.backoff.base = poller.backoff.cap = 0.01

    for _ in range(6):
        await poller.fire_due()
        await asyncio.sleep(0.03)

    row = (await _rows(scratch))["poison"]
    assert row["attempts"] == 3 and row["parked_at"] is not None
    assert "ValueError" in row["last_error"]
    parked = await timers.parked(scratch.engine)
    assert [(p.kind, p.key, p.attempts) for p in parked] == [("remind", "poison", 3)]
    assert "ValueError" in parked[0].last_error
    calls_before = len(handler.calls)
    await poller.fire_due()
    assert len(handler.calls) == calls_before  # a parked timer is left alone

    poison.clear()  # the cause was fixed; a person re-arms it
    assert await timers.rearm(scratch.engine, parked[0].id) is True
    assert await poller.fire_due() == 1
    assert await _rows(scratch) == {}
    assert sorted(await scratch.effects()) == ["fine", "poison"]


async def test_a_calling_timer_calls_outside_the_transaction_and_once_despite_a_failing_neighbour(
    scratch: Scratch, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """claim (commit), call (no transaction), record (its own transaction)."""
    timers = Timers(scratch.schema)
    await _schedule(sessions, timers, "call-1", kind="ehr")
    await _schedule(sessions, timers, "poison", kind="remind")
    calls: list[str] = []
    locked_during_call: list[bool] = []

    class EhrWork:
        async def prepare(self, session: AsyncSession, timer: Timer) -> str:
            return timer.key

        async def call(self, timer: Timer, prepared: str) -> str:
            calls.append(prepared)
            async with scratch.engine.connect() as other:
                try:
                    await other.execute(text("SET lock_timeout = '50ms'"))
                    await other.execute(
                        text(f"SELECT 1 FROM {scratch.schema}.timers WHERE id = :i FOR UPDATE"),
                        {"i": timer.id},
                    )
                    locked_during_call.append(False)
                except Exception:
                    locked_during_call.append(True)
            return "booked"

        async def record(
            self, session: AsyncSession, timer: Timer, prepared: str, result: str
        ) -> None:
            await session.execute(
                text(f"INSERT INTO {scratch.schema}.effects (consumer, ref) VALUES ('t', :r)"),
                {"r": f"{prepared}:{result}"},
            )

    poller = TimerPoller(
        sessions,
        scratch.schema,
        FixedClock(T),
        {"ehr": EhrWork(), "remind": _writer(scratch, {"poison"})},
    )
    for _ in range(3):
        await poller.fire_due()

    assert calls == ["call-1"]  # once, however often its neighbour fails
    assert locked_during_call == [False]  # no transaction held the timer during the call
    assert await scratch.effects() == ["call-1:booked"]
    assert list(await _rows(scratch)) == ["poison"]


async def test_a_parked_timer_scheduled_anew_by_its_state_starts_fresh(
    scratch: Scratch, sessions: async_sessionmaker[AsyncSession]
) -> None:
    timers = Timers(scratch.schema)
    await _schedule(sessions, timers, "poison")
    poller = TimerPoller(
        sessions,
        scratch.schema,
        FixedClock(T),
        {"remind": _writer(scratch, {"poison"})},
        max_attempts=1,
    )
    await poller.fire_due()
    assert (await _rows(scratch))["poison"]["parked_at"] is not None

    await _schedule(sessions, timers, "poison")  # the state that needs it schedules it again

    row = (await _rows(scratch))["poison"]
    assert (row["attempts"], row["parked_at"], row["retry_at"], row["last_error"]) == (
        0,
        None,
        None,
        None,
    )
