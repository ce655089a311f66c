"""The shared controlled clock and durable timers against the real Postgres."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.clock import ControlledClock, FixedClock, advance_clock, read_clock, set_clock
from shared.timer_poller import TimerPoller
from shared.timers import Timer, Timers
from tests.integration.conftest import Scratch, wait_for

pytestmark = pytest.mark.integration

T = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def clocks(engine: AsyncEngine, pg: Any) -> AsyncIterator[list[ControlledClock]]:
    """Two followers of the shared clock, as two service processes would hold them."""
    await set_clock(engine, T, rate=0)
    started = [ControlledClock(engine, pg.plain_dsn), ControlledClock(engine, pg.plain_dsn)]
    try:
        for clock in started:
            await clock.start()
        yield started
    finally:
        for clock in started:
            await clock.stop()


async def _sees(clock: ControlledClock, at: datetime, timeout: float = 2.0) -> bool:
    async def check() -> bool:
        return abs(clock.now() - at) < timedelta(milliseconds=50)

    return await wait_for(check, timeout=timeout)


async def _halt(poller: TimerPoller, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    poller.wake()
    done, _ = await asyncio.wait({task}, timeout=2)
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# --- the controlled clock ----------------------------------------------------------------------


async def test_every_follower_of_a_frozen_clock_reads_the_same_now(
    clocks: list[ControlledClock],
) -> None:
    first, second = clocks
    assert first.now() == second.now() == T
    await asyncio.sleep(0.05)
    assert second.now() == T  # rate 0: real time passing does not move it


async def test_advancing_the_clock_reaches_every_follower_through_notify(
    clocks: list[ControlledClock], engine: AsyncEngine
) -> None:
    first, second = clocks
    changes: list[datetime] = []
    second.on_change(lambda: changes.append(second.now()))

    target = await advance_clock(engine, timedelta(days=45))

    assert target == T + timedelta(days=45)
    assert await _sees(first, target)
    assert await _sees(second, target)
    assert changes and changes[-1] == target


async def test_a_clock_at_rate_3600_runs_an_hour_per_real_second(
    clocks: list[ControlledClock], engine: AsyncEngine
) -> None:
    await set_clock(engine, T, rate=3600)
    follower = clocks[1]

    async def running() -> bool:
        return follower.now() > T

    assert await wait_for(running, timeout=2)
    virtual0, real0 = follower.now(), time.monotonic()
    await asyncio.sleep(0.3)
    virtual_elapsed = (follower.now() - virtual0).total_seconds()
    real_elapsed = time.monotonic() - real0
    assert virtual_elapsed == pytest.approx(real_elapsed * 3600, rel=0.1)


async def test_advancing_a_running_clock_keeps_its_rate(engine: AsyncEngine) -> None:
    await set_clock(engine, T, rate=60)
    target = await advance_clock(engine, timedelta(days=1))
    virtual, _real, rate = await read_clock(engine)
    assert rate == 60
    assert T + timedelta(days=1) <= target < T + timedelta(days=1, minutes=5)
    assert virtual == target


async def test_the_database_refuses_a_clock_that_runs_backwards(engine: AsyncEngine) -> None:
    await set_clock(engine, T, rate=0)
    # set_clock refuses it first (see the unit tests); the table refuses it too.
    with pytest.raises(Exception, match="clock_forward_only"):
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE platform.clock SET rate = -1 WHERE id = 1"))


async def test_the_clock_refuses_naive_instants_negative_rates_and_moving_back(
    engine: AsyncEngine,
) -> None:
    await set_clock(engine, T, rate=0)
    with pytest.raises(ValueError, match="time zone"):
        await set_clock(engine, datetime(2025, 6, 2, 9, 0))
    with pytest.raises(ValueError, match="backwards"):
        await set_clock(engine, T, rate=-1)
    with pytest.raises(ValueError, match="forward"):
        await advance_clock(engine, timedelta(seconds=-1))
    assert (await read_clock(engine))[0::2] == (T, 0.0)  # nothing changed


# --- timers -------------------------------------------------------------------------------------


async def _timers(scratch: Scratch) -> list[tuple[str, str, datetime]]:
    async with scratch.engine.connect() as conn:
        rows = await conn.execute(
            text(f"SELECT kind, timer_key, due_at FROM {scratch.schema}.timers ORDER BY id")
        )
        return [(r.kind, r.timer_key, r.due_at) for r in rows]


async def _schedule(
    sessions: async_sessionmaker[AsyncSession],
    timers: Timers,
    *due: tuple[str, str, datetime],
) -> None:
    async with sessions() as session, session.begin():
        for kind, key, at in due:
            await timers.schedule(session, kind, key, at, patient_key=f"clinic-it:{key}")


class Recorder:
    """A timer handler that writes one effect row per timer and remembers the order."""

    def __init__(self, scratch: Scratch, fail_times: int = 0) -> None:
        self.scratch = scratch
        self.fired: list[str] = []
        self.calls = 0
        self.fail_times = fail_times

    async def __call__(self, session: AsyncSession, timers: Sequence[Timer]) -> None:
        self.calls += 1
        await session.execute(
            text(f"INSERT INTO {self.scratch.schema}.effects (consumer, ref) VALUES ('t', :ref)"),
            [{"ref": t.key} for t in timers],
        )
        if self.calls <= self.fail_times:
            raise RuntimeError("downstream refused")
        self.fired.extend(t.key for t in timers)


async def test_scheduling_a_timer_twice_keeps_one_at_the_last_time_and_cancel_removes_it(
    scratch: Scratch, sessions: async_sessionmaker[AsyncSession]
) -> None:
    timers = Timers(scratch.schema)
    await _schedule(sessions, timers, ("reminder", "seq-1", T))
    await _schedule(sessions, timers, ("reminder", "seq-1", T + timedelta(days=3)))
    await _schedule(sessions, timers, ("expiry", "seq-1", T))  # another kind: its own timer

    assert sorted(await _timers(scratch)) == [
        ("expiry", "seq-1", T),
        ("reminder", "seq-1", T + timedelta(days=3)),
    ]

    async with sessions() as session, session.begin():
        await timers.cancel(session, "reminder", "seq-1")
        await timers.cancel(session, "reminder", "never-scheduled")  # harmless
    assert await _timers(scratch) == [("expiry", "seq-1", T)]


async def test_fire_due_fires_only_what_is_due_in_due_order_and_deletes_it(
    scratch: Scratch, sessions: async_sessionmaker[AsyncSession]
) -> None:
    timers = Timers(scratch.schema)
    await _schedule(
        sessions,
        timers,
        ("reminder", "late", T - timedelta(hours=1)),
        ("reminder", "future", T + timedelta(seconds=1)),
        ("reminder", "now", T),
        ("reminder", "earliest", T - timedelta(days=2)),
        ("unhandled-kind", "other", T - timedelta(days=9)),
    )
    handler = Recorder(scratch)
    poller = TimerPoller(sessions, scratch.schema, FixedClock(T), {"reminder": handler})

    assert await poller.fire_due() == 3
    assert handler.fired == ["earliest", "late", "now"]
    assert await scratch.effects() == ["earliest", "late", "now"]  # committed with the firing
    left = {key for _kind, key, _at in await _timers(scratch)}
    assert left == {"future", "other"}  # not due yet; no handler for its kind
    assert await poller.fire_due() == 0


async def test_a_failing_timer_handler_rolls_back_its_effects_and_the_timers_fire_again(
    scratch: Scratch, sessions: async_sessionmaker[AsyncSession]
) -> None:
    timers = Timers(scratch.schema)
    await _schedule(sessions, timers, ("reminder", "a", T), ("reminder", "b", T))
    handler = Recorder(scratch, fail_times=1)
    poller = TimerPoller(sessions, scratch.schema, FixedClock(T), {"reminder": handler})

    # The batch fails once; fired again one by one, each timer succeeds.
    assert await poller.fire_due() == 2
    assert await _timers(scratch) == []
    assert sorted(await scratch.effects()) == ["a", "b"]  # the failed attempt left nothing
    assert handler.calls == 3


async def test_two_pollers_never_fire_the_same_timer_twice(
    scratch: Scratch, sessions: async_sessionmaker[AsyncSession]
) -> None:
    timers = Timers(scratch.schema)
    await _schedule(
        sessions,
        timers,
        *(("reminder", f"k{i}", T - timedelta(seconds=i)) for i in range(500)),
    )
    handler = Recorder(scratch)
    pollers = [
        TimerPoller(sessions, scratch.schema, FixedClock(T), {"reminder": handler}, batch_size=25)
        for _ in range(2)
    ]

    async def drain(poller: TimerPoller) -> None:
        while await poller.fire_due():
            pass

    await asyncio.gather(*(drain(p) for p in pollers))
    # A poller can see nothing left while the other still holds the last batch: drain again.
    await asyncio.gather(*(drain(p) for p in pollers))

    assert len(handler.fired) == 500 and len(set(handler.fired)) == 500
    assert sorted(await scratch.effects()) == sorted(f"k{i}" for i in range(500))
    assert all(p.fired > 0 for p in pollers)  # both really shared the work
    assert await _timers(scratch) == []


async def test_moving_the_controlled_clock_on_by_months_fires_the_timers_that_fell_due(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    clocks: list[ControlledClock],
    engine: AsyncEngine,
) -> None:
    timers = Timers(scratch.schema)
    await _schedule(
        sessions,
        timers,
        ("recall", "in-30-days", T + timedelta(days=30)),
        ("recall", "in-60-days", T + timedelta(days=60)),
        ("recall", "in-200-days", T + timedelta(days=200)),
    )
    clock = clocks[1]
    handler = Recorder(scratch)
    # Polls only when woken: the clock's change notification must be what fires the timers.
    poller = TimerPoller(sessions, scratch.schema, clock, {"recall": handler}, poll_interval=60)
    clock.on_change(poller.wake)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        assert await poller.fire_due() == 0

        await advance_clock(engine, timedelta(days=90))

        async def fired() -> bool:
            return len(handler.fired) == 2

        assert await wait_for(fired, timeout=3)
        assert handler.fired == ["in-30-days", "in-60-days"]
        assert [key for _k, key, _at in await _timers(scratch)] == ["in-200-days"]
    finally:
        await _halt(poller, stop, task)


async def test_a_wake_up_that_arrives_while_a_batch_is_firing_is_not_lost(
    scratch: Scratch, sessions: async_sessionmaker[AsyncSession]
) -> None:
    timers = Timers(scratch.schema)
    await _schedule(sessions, timers, ("reminder", "first", T))
    firing, release = asyncio.Event(), asyncio.Event()
    fired: list[str] = []

    async def slow(session: AsyncSession, batch: Sequence[Timer]) -> None:
        firing.set()
        await release.wait()
        fired.extend(t.key for t in batch)

    poller = TimerPoller(sessions, scratch.schema, FixedClock(T), {"reminder": slow})
    poller.poll_interval = 60  # only a wake-up can make it poll again in time
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        await asyncio.wait_for(firing.wait(), timeout=5)
        # A handler elsewhere schedules a due timer and wakes the poller mid-batch.
        await _schedule(sessions, timers, ("reminder", "second", T))
        poller.wake()
        release.set()

        async def both() -> bool:
            return fired == ["first", "second"]

        assert await wait_for(both, timeout=3)
    finally:
        await _halt(poller, stop, task)
