"""Consumer and timer glue: typed deliveries and due timers in, ``workflow`` does the rest."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.escalation import workflow
from services.escalation.workflow import Escalation
from shared.consumer import BatchHandler, Delivery
from shared.timers import Timer, TimerHandler

# The service reads and writes escalations.v1: it consumes only what others raise, never its
# own lifecycle events (paged, acknowledged, resolved), so nothing loops.
CONSUMED = frozenset({"EscalationRaised"})


def cases_handler(esc: Escalation) -> BatchHandler:
    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            if d.envelope.type in CONSUMED:
                await workflow.raise_case(session, esc, d.envelope, d.trace_headers)
        # Pages were queued in this transaction; the dispatcher's next poll picks them up.
        esc.wake_dispatcher()

    return handle


def timer_handler(esc: Escalation) -> TimerHandler:
    async def fire(session: AsyncSession, timers: Sequence[Timer]) -> None:
        for timer in timers:
            await workflow.fire_timer(session, esc, timer)
        esc.wake_dispatcher()

    return fire
