"""One queue in front of the database: what concurrent requests and MLLP connections submit is
committed together, one transaction per batch, in arrival order.

Each body keeps its own all-or-nothing (``handlers.accept_groups``); batching only shares the
transaction, the round trips and the relay wake-up among them. While a batch commits, the next
one fills, so batches grow with load and a lone message waits for no one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from services.ingest.handlers import Group, Outcome
from services.ingest.submissions import Submission
from shared.telemetry import inject_headers

log = logging.getLogger(__name__)
Commit = Callable[[Sequence[Group]], Awaitable[list[list[Outcome]]]]


class Unavailable(Exception):
    """The batch could not be committed (database unreachable, shutting down): resend."""


class Batcher:
    def __init__(self, commit: Commit, max_messages: int) -> None:
        self._commit = commit
        self._max = max_messages
        self._queue: asyncio.Queue[tuple[Group, asyncio.Future[list[Outcome]]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ingest-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=5)
        self._fail([])

    def enqueue(
        self, submissions: Sequence[Submission], *, all_or_nothing: bool = False
    ) -> asyncio.Future[list[Outcome]]:
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        # The trace context is the caller's (the HTTP request's span), not the batcher task's.
        group = Group(submissions, all_or_nothing, inject_headers())
        self._queue.put_nowait((group, future))
        return future

    async def submit(
        self, submissions: Sequence[Submission], *, all_or_nothing: bool = False
    ) -> list[Outcome]:
        return await self.enqueue(submissions, all_or_nothing=all_or_nothing)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0][0].submissions)
            while size < self._max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
                size += len(batch[-1][0].submissions)
            try:
                results = await self._commit([group for group, _ in batch])
            except asyncio.CancelledError:
                self._fail(batch)
                raise
            except Exception as exc:  # database unreachable and the like: senders resend
                log.warning("ingest batch failed", extra={"error": exc.__class__.__name__})
                self._fail(batch)
                continue
            self.batches += 1
            for (_, future), outcomes in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(outcomes)

    def _fail(self, batch: list[tuple[Group, asyncio.Future[list[Outcome]]]]) -> None:
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        for _, future in batch:
            if not future.done():
                future.set_exception(Unavailable())
