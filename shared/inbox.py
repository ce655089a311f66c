"""Idempotent consumption: ``(consumer, event_id)`` is recorded in the effect's transaction.

A redelivered event (after a crash between commit and offset commit, or a relay that published
twice) finds its row already there and is skipped, so it has exactly one effect.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession


class Inbox:
    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._claim = text(
            f"INSERT INTO {schema}.inbox (consumer, event_id) "
            "SELECT :consumer, unnest(:ids) ON CONFLICT DO NOTHING RETURNING event_id"
        ).bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))

    async def claim(
        self,
        session: AsyncSession | AsyncConnection,
        consumer: str,
        event_ids: Sequence[uuid.UUID],
    ) -> set[uuid.UUID]:
        """Record ``event_ids`` as seen by ``consumer``; return those not seen before."""
        if not event_ids:
            return set()
        result = await session.execute(
            self._claim, {"consumer": consumer, "ids": list(dict.fromkeys(event_ids))}
        )
        return {row[0] for row in result}
