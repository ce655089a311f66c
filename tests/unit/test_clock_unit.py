"""Clocks without a database: fixed time, the controlled clock's arithmetic, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import shared.clock as clock_module
from shared.clock import (
    ControlledClock,
    FixedClock,
    SystemClock,
    advance_clock,
    set_clock,
)
from shared.timers import Timers

T = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)


class Untouchable:
    """Stands in for an engine or session that a refusal must never reach."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the database was used ({name}) before the input was checked")


class FakeTime:
    """Real time, under the test's control (only ``time()`` is used by the clock)."""

    def __init__(self, epoch: float) -> None:
        self.epoch = epoch

    def time(self) -> float:
        return self.epoch


@pytest.fixture
def real_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime(1_000_000.0)
    monkeypatch.setattr(clock_module, "time", fake)
    return fake


def _stored(monkeypatch: pytest.MonkeyPatch, virtual: datetime, real: float, rate: float) -> None:
    async def read_clock(_engine: Any) -> tuple[datetime, float, float]:
        return virtual, real, rate

    monkeypatch.setattr(clock_module, "read_clock", read_clock)


def test_a_fixed_clock_moves_only_when_told() -> None:
    clock = FixedClock(T)
    assert clock.now() == clock.now() == T
    clock.advance(timedelta(days=14))
    assert clock.now() == T + timedelta(days=14)
    clock.set(T - timedelta(days=1))
    assert clock.now() == T - timedelta(days=1)


def test_the_system_clock_is_aware_utc_and_current() -> None:
    now = SystemClock().now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


async def test_a_frozen_controlled_clock_reads_its_anchor_however_much_real_time_passes(
    monkeypatch: pytest.MonkeyPatch, real_time: FakeTime
) -> None:
    _stored(monkeypatch, T, real_time.epoch, 0.0)
    clock = ControlledClock(Untouchable(), "postgresql://unused")  # type: ignore[arg-type]
    await clock.reload()
    real_time.epoch += 3600
    assert clock.now() == T


async def test_a_running_controlled_clock_adds_real_seconds_times_its_rate(
    monkeypatch: pytest.MonkeyPatch, real_time: FakeTime
) -> None:
    # Anchored 2 real seconds ago at T, running an hour per second.
    _stored(monkeypatch, T, real_time.epoch - 2, 3600.0)
    clock = ControlledClock(Untouchable(), "postgresql://unused")  # type: ignore[arg-type]
    await clock.reload()
    assert clock.now() == T + timedelta(hours=2)
    real_time.epoch += 0.5
    assert clock.now() == T + timedelta(hours=2, minutes=30)


async def test_reloading_the_controlled_clock_tells_every_watcher(
    monkeypatch: pytest.MonkeyPatch, real_time: FakeTime
) -> None:
    _stored(monkeypatch, T, real_time.epoch, 0.0)
    clock = ControlledClock(Untouchable(), "postgresql://unused")  # type: ignore[arg-type]
    seen: list[datetime] = []
    clock.on_change(lambda: seen.append(clock.now()))
    clock.on_change(lambda: seen.append(clock.now() + timedelta(days=1)))
    await clock.reload()
    assert seen == [T, T + timedelta(days=1)]


async def test_setting_the_clock_refuses_a_naive_instant() -> None:
    with pytest.raises(ValueError, match="time zone"):
        await set_clock(Untouchable(), datetime(2025, 6, 2, 9, 0))  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [-1.0, -0.001])
async def test_setting_the_clock_refuses_a_negative_rate(rate: float) -> None:
    with pytest.raises(ValueError, match="cannot run backwards"):
        await set_clock(Untouchable(), T, rate=rate)  # type: ignore[arg-type]


async def test_advancing_the_clock_refuses_to_move_it_back() -> None:
    with pytest.raises(ValueError, match="only moves forward"):
        await advance_clock(Untouchable(), timedelta(microseconds=-1))  # type: ignore[arg-type]


async def test_a_timer_refuses_a_naive_due_time() -> None:
    with pytest.raises(ValueError, match="time zone aware"):
        await Timers("segmenter").schedule(
            Untouchable(),  # type: ignore[arg-type]
            "recall",
            "need-1",
            datetime(2025, 6, 2, 9, 0),
        )
