"""Pruning what is kept only for a while: inbox rows, message bodies, audit rows.

Every service runs one supervised ``retention`` loop (``shared.loops``) that sweeps its jobs
every ``REVISIT_RETENTION_SWEEP_SECONDS``: its own schema's inbox (the consumed-event ids kept
to reject redeliveries, useless once the topics no longer hold those events) and the audit
log's oldest rows. A service adds jobs of its own (the messenger: stored message bodies) with
:meth:`Retention.add`. The ingest's raw EHR messages have their own sweep
(``REVISIT_RAW_RETENTION_DAYS``, services/ingest/retention.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import audit_log
from shared.config import RetentionSettings

log = logging.getLogger(__name__)

PruningJob = Callable[[], Awaitable[int]]
# Large deletes go in slices, so a sweep never holds long locks on a busy table.
_SLICE = 10_000


class Retention:
    def __init__(self, service: str, settings: RetentionSettings) -> None:
        self.service = service
        self.settings = settings
        self.jobs: dict[str, PruningJob] = {}

    def add(self, name: str, job: PruningJob) -> None:
        self.jobs[name] = job

    async def sweep_once(self) -> dict[str, int]:
        """Run every job once; how many rows each removed or redacted (-1: it failed)."""
        done: dict[str, int] = {}
        # A service adds its own jobs in on_start, while the first sweep may be running.
        for name, job in list(self.jobs.items()):
            try:
                done[name] = await job()
            except Exception as exc:  # the next sweep tries again
                done[name] = -1
                log.warning(
                    "retention job failed",
                    extra={"service": self.service, "job": name, "error": type(exc).__name__},
                )
        if any(done.values()):
            log.info("retention sweep", extra={"service": self.service, **done})
        return done

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sweep_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    stop.wait(), timeout=self.settings.revisit_retention_sweep_seconds
                )


async def delete_in_slices(engine: AsyncEngine, table: str, where: str, **params: object) -> int:
    """DELETE FROM ``table`` WHERE ``where``, a slice per transaction; rows removed."""
    removed = 0
    sql = text(
        f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} WHERE {where} LIMIT {_SLICE})"
    )
    while True:
        async with engine.begin() as conn:
            count = (await conn.execute(sql, params)).rowcount
        removed += count
        if count < _SLICE:
            return removed


def inbox_job(engine: AsyncEngine, schema: str, days: int) -> PruningJob:
    async def prune_inbox() -> int:
        return await delete_in_slices(
            engine,
            f"{schema}.inbox",
            "processed_at < now() - make_interval(days => :days)",
            days=days,
        )

    return prune_inbox


def audit_job(engine: AsyncEngine, days: int) -> PruningJob:
    async def prune_audit() -> int:
        return await audit_log.prune(engine, days)

    return prune_audit


def standard(
    service: str, schema: str, engine: AsyncEngine, settings: RetentionSettings
) -> Retention:
    """The jobs every service runs."""
    retention = Retention(service, settings)
    retention.add("inbox", inbox_job(engine, schema, settings.revisit_inbox_retention_days))
    retention.add("audit", audit_job(engine, settings.revisit_audit_retention_days))
    return retention
