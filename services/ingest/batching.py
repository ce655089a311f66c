"""One queue in front of the database: what concurrent requests and MLLP connections submit is
committed together, one transaction per batch, in arrival order.

Each body keeps its own all-or-nothing (``handlers.accept_groups``); batching only shares the
transaction, the round trips and the relay wake-up among them. While a batch commits, the next
one fills, so batches grow with load and a lone message waits for no one.

Sharing a transaction must not mean sharing a fate. When a batch fails for a transient reason
(the database away; ``shared.faults``) every sender is told to send again (503, HL7 AE). When
it fails for any other reason, one of its bodies could not be stored: the bodies are committed
again one by one, in arrival order, and only the one that still fails is refused (HL7 AR: do
not resend it as it is; HTTP 422), with the kind of failure as its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from services.ingest.domain import Problem
from services.ingest.handlers import Group, Outcome
from services.ingest.submissions import Submission
from shared.faults import is_transient, sqlstate
from shared.telemetry import inject_headers

log = logging.getLogger(__name__)
Commit = Callable[[Sequence[Group]], Awaitable[list[list[Outcome]]]]
Keep = Callable[[Group, Sequence[Outcome]], Awaitable[None]]


class Unavailable(Exception):
    """The batch could not be committed (database unreachable, shutting down): resend."""


class Batcher:
    def __init__(self, commit: Commit, max_messages: int, keep: Keep | None = None) -> None:
        self._commit = commit
        self._keep = keep
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
            except Exception as exc:
                if is_transient(exc):  # database unreachable and the like: senders resend
                    log.warning("ingest batch failed", extra={"error": exc.__class__.__name__})
                    self._fail(batch)
                    continue
                try:
                    results = await self._one_by_one([group for group, _ in batch], exc)
                except asyncio.CancelledError:
                    self._fail(batch)
                    raise
                except Exception as again:  # transient meanwhile: senders resend
                    log.warning("ingest batch failed", extra={"error": type(again).__name__})
                    self._fail(batch)
                    continue
            self.batches += 1
            for (_, future), outcomes in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(outcomes)

    async def _one_by_one(self, groups: Sequence[Group], first: Exception) -> list[list[Outcome]]:
        """Each body in its own transaction; a body that fails alone is refused (AR)."""
        log.warning(
            "ingest batch failed; committing its bodies one by one",
            extra={"error": type(first).__name__, "bodies": len(groups)},
        )
        results: list[list[Outcome]] = []
        for group in groups:
            try:
                [outcomes] = await self._commit([group])
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.error(
                    "an ingest body could not be stored; refused",
                    extra={"error": type(exc).__name__, "sqlstate": sqlstate(exc)},
                )
                outcomes = [_unstorable(exc) for _ in group.submissions]
                if self._keep is not None:
                    try:
                        await self._keep(group, outcomes)
                    except Exception as lost:  # the answer (AR) still goes out
                        log.error("refused body not kept", extra={"error": type(lost).__name__})
            results.append(outcomes)
        return results

    def _fail(self, batch: list[tuple[Group, asyncio.Future[list[Outcome]]]]) -> None:
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        for _, future in batch:
            if not future.done():
                future.set_exception(Unavailable())


def _unstorable(exc: Exception) -> Outcome:
    code = sqlstate(exc)
    why = f"could not be stored ({type(exc).__name__}{f', SQLSTATE {code}' if code else ''})"
    return Outcome(
        "refused",
        problems=(Problem("(message)", f"{why}: do not resend it as is", "207"),),
        reject=True,
    )
