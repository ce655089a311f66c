"""Waiting for the pipeline to finish what a tick started, before the clock moves again.

Moving the clock while events are still in flight would stamp their effects with a later
"now" than a real practice would see, and make two runs of the same seed drift apart. The
stack is idle when no service has an unpublished outbox row or a due timer, the messenger has
nothing queued to send, and the inboxes (every consumed event) stopped growing. Read straight
from each service's schema: it is the only place that knows, and the simulator runs beside the
stack it drives, never in production.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import SERVICE_NAMES


@dataclass(frozen=True)
class PipelineState:
    pending_outbox: int
    due_timers: int
    consumed: int

    @property
    def quiet(self) -> bool:
        return self.pending_outbox == 0 and self.due_timers == 0


def _state_query() -> str:
    parts = []
    for schema in SERVICE_NAMES:
        parts.append(
            f"SELECT (SELECT count(*) FROM {schema}.outbox) AS o, "
            # A parked timer waits for a person, not for the pipeline: it never makes it busy.
            f"(SELECT count(*) FROM {schema}.timers WHERE due_at <= :now "
            "AND parked_at IS NULL) AS t, "
            f"(SELECT count(*) FROM {schema}.inbox) AS i"
        )
    # The messenger's send queue is work in flight too: a step decided in this tick is sent
    # by its dispatcher a moment later (wall-clock backoffs are its own and not waited for).
    queued = (
        "(SELECT count(*) FROM messenger.outgoing WHERE (status = 'queued' "
        "AND available_at <= now()) OR status = 'sending')"
    )
    union = " UNION ALL ".join(parts)
    return f"SELECT sum(o) + {queued}, sum(t), sum(i) FROM ({union}) AS s"


STATE_SQL = text(_state_query())
NEXT_TIMER_SQL = text(
    "SELECT min(t) FROM ("
    + " UNION ALL ".join(
        f"SELECT min(due_at) AS t FROM {schema}.timers WHERE due_at > :now AND parked_at IS NULL"
        for schema in SERVICE_NAMES
    )
    + ") AS s"
)


async def next_timer(engine: AsyncEngine, now: datetime) -> datetime | None:
    """When the stack next wakes by itself (a step to send, a sweep, a page to repeat)."""
    async with engine.connect() as conn:
        found: datetime | None = (await conn.execute(NEXT_TIMER_SQL, {"now": now})).scalar()
    return found


async def pipeline_state(engine: AsyncEngine, now: datetime) -> PipelineState:
    async with engine.connect() as conn:
        row = (await conn.execute(STATE_SQL, {"now": now})).one()
    return PipelineState(int(row[0] or 0), int(row[1] or 0), int(row[2] or 0))


# Quiet readings in a row before the stack counts as idle. A timer's work can run just after
# the timer row is gone (the segmenter's sweeper is woken by its timer and writes a moment
# later): a third of a second of stillness covers that gap in practice.
STABLE_READINGS = 3


class Settler:
    """Waits, tick after tick, for the pipeline to be idle again; remembers where it was idle."""

    def __init__(self, engine: AsyncEngine, *, poll_s: float = 0.1) -> None:
        self.engine = engine
        self.poll_s = poll_s
        self.consumed = -1  # the inboxes' total when the pipeline was last idle

    async def settle(self, now: datetime, *, acted: bool = True, timeout_s: float = 10.0) -> bool:
        """Idle (True) or still busy after ``timeout_s`` (False).

        Idle needs STABLE_READINGS + 1 quiet readings in a row with the same consumed count: an
        event on its way through Kafka (a consumer waits up to 50 ms to fill a batch) is in
        neither an outbox nor an inbox for a moment. A tick in which the simulation sent
        nothing, and after which no timer is due and nothing more was consumed, is idle at the
        first reading: most hours of a practice's night are like that.
        """
        deadline = time.monotonic() + timeout_s
        consumed, stable = -1, 0
        while time.monotonic() < deadline:
            state = await pipeline_state(self.engine, now)
            if not acted and state.quiet and state.consumed == self.consumed:
                return True
            acted = True
            if state.quiet and state.consumed == consumed:
                stable += 1
                if stable >= STABLE_READINGS:
                    self.consumed = consumed
                    return True
            else:
                stable = 0
            consumed = state.consumed if state.quiet else -1
            await asyncio.sleep(self.poll_s)
        return False
