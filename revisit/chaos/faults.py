"""The faults the run injects, on processes it started itself.

- ``kill``: SIGKILL to one service's process group, when the pipeline is busy (mid-batch); the
  dev supervisor restarts it.
- ``pause_broker``: SIGSTOP / SIGCONT of the broker (memory storage: a restart would lose every
  topic and offset, which real Kafka never does, so it is paused instead).
- ``restart_database``: a PostgreSQL fast shutdown and start on the same port.
- ``pause_database``: SIGSTOP / SIGCONT of the postmaster and every backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from revisit.embedded.broker import EmbeddedBroker
from revisit.embedded.postgres import EmbeddedPostgres
from revisit.stack import readiness_error
from revisit.supervisor import Supervisor
from shared.clock import current_time
from simulator.settle import pipeline_state

Say = Callable[[str], None]


@dataclass(frozen=True)
class Fault:
    kind: str  # kill | pause_broker | restart_database | pause_database
    target: str = ""
    seconds: float = 0.0

    @property
    def label(self) -> str:
        names = {
            "kill": f"kill -9 {self.target}",
            "pause_broker": "broker SIGSTOP/SIGCONT",
            "restart_database": "PostgreSQL restart",
            "pause_database": "PostgreSQL SIGSTOP/SIGCONT",
        }
        return names[self.kind]


class Injector:
    def __init__(
        self,
        sup: Supervisor,
        pg: EmbeddedPostgres,
        broker: EmbeddedBroker,
        engine: AsyncEngine,
        base: dict[str, str],
        say: Say,
    ) -> None:
        self.sup, self.pg, self.broker, self.engine = sup, pg, broker, engine
        self.base = base
        self.say = say

    async def inject(self, fault: Fault) -> None:
        started = time.monotonic()
        if fault.kind == "kill":
            busy = await self._until_busy()
            pid = self.sup.pids.get(fault.target)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            self.say(f"{fault.label} ({'mid-batch' if busy else 'pipeline idle'})")
            # Only until the supervisor started it again: the next fault may hit the stack
            # while this service is still coming back, as it would in real life.
            await self._restarted(fault.target, pid)
            return
        if fault.kind == "pause_broker":
            self.broker.pause()
            self.say(f"{fault.label}: paused for {fault.seconds:g} s")
            try:
                await asyncio.sleep(fault.seconds)
            finally:
                self.broker.resume()
        elif fault.kind == "restart_database":
            self.say(fault.label)
            await asyncio.to_thread(self.pg.restart)
        elif fault.kind == "pause_database":
            self.pg.pause()
            self.say(f"{fault.label}: paused for {fault.seconds:g} s")
            try:
                await asyncio.sleep(fault.seconds)
            finally:
                self.pg.resume()
        ready = await self.wait_ready()
        self.say(
            f"  recovered: every service ready {time.monotonic() - started:.0f} s after the fault"
            if ready
            else "  not every service ready yet; carrying on"
        )

    async def _restarted(self, name: str, old: int | None, within: float = 20.0) -> None:
        for _ in range(int(within * 10)):
            if self.sup.pids.get(name) not in (None, old):
                return
            await asyncio.sleep(0.1)

    async def _until_busy(self, within: float = 8.0) -> bool:
        """Wait (a little) for work in flight, so a kill lands mid-batch."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                now, _ = await current_time(self.engine)
                state = await pipeline_state(self.engine, now)
                if not state.quiet:
                    return True
            await asyncio.sleep(0.05)
        return False

    async def wait_ready(self, within: float = 120.0) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            errors = await asyncio.gather(
                *(asyncio.to_thread(readiness_error, f"{b}/readyz") for b in self.base.values())
            )
            if not any(errors):
                return True
            await asyncio.sleep(0.5)
        return False


async def poll_supervisor(sup: Supervisor, stop: asyncio.Event, on_failure: Say) -> None:
    """The dev supervisor restarts what was killed; it is polled from this (main) thread."""
    while not stop.is_set():
        failure = sup.poll()
        if failure:
            on_failure(failure)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.2)


async def run_script(
    script: list[tuple[float, Fault]],
    injector: Injector,
    counts: dict[str, int],
    started: float,
    until: Callable[[], Awaitable[bool]] | None = None,
) -> None:
    """Each fault at its offset (seconds after ``started``), one at a time."""
    for offset, fault in script:
        wait = started + offset - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if until is not None and await until():
            return
        await injector.inject(fault)
        counts[fault.label] = counts.get(fault.label, 0) + 1
