"""One supervisor for a service process's background loops.

The outbox relay, the timer pollers, the messenger's dispatcher, the segmenter's sweeper, the
escalation's pager and the like are long-running coroutines ``run(stop)``. Each copes with the
failures it expects (a broker hiccup: back off, try again); anything else ends it. Here a loop
that ends without being asked to is reported (a log line with its error class, the
``revisit_loop_restarts_total`` counter, ``revisit_loop_up`` at 0) and started again after a
capped, jittered backoff that grows while it keeps crashing. While a *required* loop is down,
``down()`` names it and ``/readyz`` answers 503, so an orchestrator sees a process that is alive
but not doing its work.

This is the one way a service runs background work: ``add(name, run)`` for a loop that runs
until it is stopped, ``once(name, job)`` for a job that runs to its end (a rebuild at start-up)
and is started again only if it crashes. Both stop with the service; nothing is a bare task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shared import pipeline_metrics as pm
from shared.faults import Backoff, is_transient

log = logging.getLogger(__name__)
LoopBody = Callable[[asyncio.Event], Awaitable[None]]


@dataclass
class Loop:
    name: str
    body: LoopBody
    required: bool = True
    once: bool = False  # a job: returning is finishing, not a crash
    done: bool = False
    up: bool = False
    crashes: int = 0
    last_error: str = ""
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class Loops:
    def __init__(self, service: str, *, stable_after_s: float = 60.0) -> None:
        self.service = service
        self.backoff = Backoff(base=0.5, cap=30.0)
        self.stable_after_s = stable_after_s
        self._loops: dict[str, Loop] = {}
        self._stop = asyncio.Event()
        self._started = False

    def add(self, name: str, body: LoopBody, *, required: bool = True) -> Loop:
        """Register ``body`` (started now if the supervisor already runs)."""
        return self._register(Loop(name, body, required))

    def once(self, name: str, job: LoopBody) -> Loop:
        """Run ``job(stop)`` to its end in the background (again if it crashes); a job that is
        still running does not make the process unready."""
        return self._register(Loop(name, job, required=False, once=True))

    def _register(self, loop: Loop) -> Loop:
        if loop.name in self._loops:
            raise ValueError(f"a loop named {loop.name!r} is already supervised")
        self._loops[loop.name] = loop
        if self._started:
            self._launch(loop)
        return loop

    def start(self) -> None:
        self._started = True
        for loop in self._loops.values():
            if loop.task is None:
                self._launch(loop)

    def _launch(self, loop: Loop) -> None:
        loop.task = asyncio.create_task(self._keep(loop), name=f"{self.service}-{loop.name}")

    async def stop(self, within: float = 5.0) -> None:
        """Ask every loop to stop, wait up to ``within`` seconds, cancel what is left."""
        self._stop.set()
        tasks = [loop.task for loop in self._loops.values() if loop.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=within)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    @property
    def stopping(self) -> asyncio.Event:
        return self._stop

    def down(self) -> list[str]:
        """Required loops that are not running right now."""
        return [n for n, loop in self._loops.items() if loop.required and not loop.up]

    def status(self) -> dict[str, str]:
        def state(loop: Loop) -> str:
            return "done" if loop.done else "up" if loop.up else "down"

        return {n: state(loop) for n, loop in self._loops.items()}

    def __getitem__(self, name: str) -> Loop:
        return self._loops[name]

    async def _keep(self, loop: Loop) -> None:
        labels = (self.service, loop.name)
        attempt = 0
        while not self._stop.is_set():
            started = time.monotonic()
            loop.up = True
            pm.LOOP_UP.labels(*labels).set(1)
            try:
                await loop.body(self._stop)
                if self._stop.is_set():
                    break
                if loop.once:
                    loop.done = True
                    break
                raise RuntimeError("the loop returned without being stopped")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                loop.up = False
                loop.crashes += 1
                loop.last_error = type(exc).__name__
                pm.LOOP_UP.labels(*labels).set(0)
                pm.LOOP_RESTARTS.labels(*labels).inc()
                if time.monotonic() - started >= self.stable_after_s:
                    attempt = 0
                delay = self.backoff.delay(attempt)
                attempt += 1
                transient = is_transient(exc)
                # The database or broker going away is expected: a line, not a traceback.
                log.log(
                    logging.WARNING if transient else logging.ERROR,
                    "background loop crashed; restarting",
                    extra={
                        "service": self.service,
                        "loop": loop.name,
                        "error": type(exc).__name__,
                        "crashes": loop.crashes,
                        "restart_in_s": round(delay, 2),
                    },
                    exc_info=None if transient else exc,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
            finally:
                if self._stop.is_set():
                    loop.up = False
        loop.up = False
        pm.LOOP_UP.labels(*labels).set(0)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile (a loop's pause between rounds)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Wait until ``stop`` or ``wake`` is set, or ``seconds`` have passed (an idle loop that a
    NOTIFY or a new row can wake early)."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
