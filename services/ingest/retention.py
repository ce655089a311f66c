"""Purges kept raw messages once they are older than the retention (REVISIT_RAW_RETENTION_DAYS)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from services.ingest import archive
from services.ingest.settings import IngestSettings
from shared.runtime import Runtime

log = logging.getLogger(__name__)


async def sweep_once(runtime: Runtime, settings: IngestSettings) -> tuple[int, int]:
    """(accepted messages whose raw was purged, refused messages deleted)."""
    now = runtime.clock.now()
    cutoff = now - timedelta(days=settings.raw_retention_days)
    async with runtime.sessions() as session, session.begin():
        return await archive.purge(session, cutoff, now)


async def sweep_forever(runtime: Runtime, settings: IngestSettings, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            purged, deleted = await sweep_once(runtime, settings)
            if purged or deleted:
                log.info("raw messages purged", extra={"accepted": purged, "refused": deleted})
        except Exception as exc:  # the next sweep tries again
            log.warning("retention sweep failed", extra={"error": exc.__class__.__name__})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.retention_sweep_seconds)
