"""Message words are kept for staff to read for a while, then removed (the rows stay).

``REVISIT_MESSAGE_BODY_RETENTION_DAYS`` after a message was sent or received, its body (and
subject, and the reading of a reply) are replaced by :data:`REMOVED`; when, on which channel,
what the patient meant in categories (intent, barrier) and what happened stay for the figures.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from services.messenger.repository import SCHEMA
from shared.retention import PruningJob
from shared.runtime import Runtime

REMOVED = "[removed after the retention period]"

_REDACTIONS = (
    f"UPDATE {SCHEMA}.outgoing SET body = :gone, subject = NULL "
    "WHERE created_at < :cutoff AND body <> :gone",
    f"UPDATE {SCHEMA}.inbound SET body = :gone, summary = NULL, reading = NULL "
    "WHERE received_at < :cutoff AND body <> :gone",
    f"UPDATE {SCHEMA}.sandbox_messages SET body = :gone, subject = NULL "
    "WHERE created_at < :cutoff AND body <> :gone",
)


def body_job(runtime: Runtime) -> PruningJob:
    days = runtime.settings.retention.revisit_message_body_retention_days

    async def remove_old_bodies() -> int:
        cutoff = runtime.clock.now() - timedelta(days=days)
        removed = 0
        async with runtime.engine.begin() as conn:
            for sql in _REDACTIONS:
                result = await conn.execute(text(sql), {"gone": REMOVED, "cutoff": cutoff})
                removed += max(result.rowcount, 0)
        return removed

    return remove_old_bodies
