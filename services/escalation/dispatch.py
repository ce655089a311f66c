"""The dispatcher: works off the ``pages`` table, outside every database transaction.

Each loop claims the due deliveries (a short transaction: ``FOR UPDATE SKIP LOCKED``, one try
counted, a lease set), then delivers each in its own task, so a slow or dead provider holds up
only its own deliveries, never another case's page. The outcome is stored in a second short
transaction: delivered (and, for the first delivery of an attempt, ``EscalationPaged`` is
staged in that same transaction), retried after a back-off, or failed after the last try.
A crash mid-delivery leaves the lease to run out and the row is tried again; the dedup key
makes that harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError

from services.escalation.domain import Action, AuditEntry, backoff_seconds
from services.escalation.notifiers import (
    DeliveryResult,
    NotifierFactory,
    NotifierMisconfigured,
    PageNotice,
)
from services.escalation.repository import audit, cases, notifiers, pages
from services.escalation.settings import FALLBACK_ID
from services.escalation.workflow import Escalation, envelopes
from shared.events.escalations import EscalationPaged

log = logging.getLogger(__name__)

DELIVERIES = Counter(
    "revisit_escalation_page_deliveries_total",
    "Page delivery tries by outcome (reason = <notifier kind>.<action>.<outcome>)",
    ["service", "reason"],
)


class PageDispatcher:
    def __init__(self, esc: Escalation, factory: NotifierFactory) -> None:
        self.esc = esc
        self.factory = factory
        self.config = esc.config
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self, stop: asyncio.Event) -> None:
        interval = self.config.dispatch_interval_ms / 1000
        try:
            while not stop.is_set():
                try:
                    await self.dispatch_once()
                except Exception as exc:  # database away: keep the rows, try again
                    log.warning("page dispatch retrying", extra={"error": type(exc).__name__})
                    await asyncio.sleep(1.0)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=interval)
        finally:
            await self.drain(within=self.config.delivery_timeout_s + 1)

    async def dispatch_once(self) -> int:
        """Claim what is due (up to the free capacity) and start delivering it."""
        free = self.config.dispatch_concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        wall_now = self.esc.wall.now()
        lease = timedelta(seconds=2 * self.config.delivery_timeout_s + 10)
        async with self.esc.runtime.sessions() as session, session.begin():
            rows = await pages.claim_due(session, wall_now, wall_now + lease, free)
        for row in rows:
            task = asyncio.create_task(self._deliver(row), name=f"page-{row.id}")
            self._in_flight.add(task)
            task.add_done_callback(self._done)
        return len(rows)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()  # capacity is free again

    async def drain(self, within: float = 10.0) -> None:
        """Wait for deliveries in flight (tests, shutdown); the rest keep their lease."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=within)

    async def _deliver(self, row: Any) -> None:
        notice = pages.notice_of(row)
        result = await self._try(row, notice)
        try:
            await self._record(row, notice, result)
        except Exception as exc:  # the lease runs out and the delivery is tried again
            log.error(
                "page outcome not stored",
                extra={
                    "page_id": row.id,
                    "escalation_id": notice.escalation_id,
                    "error": type(exc).__name__,
                },
            )

    async def _try(self, row: Any, notice: PageNotice) -> DeliveryResult:
        try:
            if row.notifier_id == FALLBACK_ID:
                fallback = self.esc.fallback
                found = [fallback] if fallback is not None else []
            else:
                async with self.esc.runtime.sessions() as session:
                    found = await notifiers.load(session, row.clinic_id, [row.notifier_id])
            if not found:
                return DeliveryResult.give_up("notifier no longer configured")
            notifier = await self.factory.build(found[0], row.clinic_id)
            return await notifier.deliver(notice)
        except NotifierMisconfigured as exc:
            return DeliveryResult.retry(str(exc))  # fixed configuration applies to the next try
        except ValidationError:
            return DeliveryResult.give_up("notifier settings invalid")
        except Exception as exc:  # a notifier bug must not kill the loop or lose the row
            return DeliveryResult.retry(f"error: {type(exc).__name__}")

    async def _record(self, row: Any, notice: PageNotice, result: DeliveryResult) -> None:
        cfg = self.config
        final = not result.ok and (not result.retryable or row.tries >= cfg.delivery_max_tries)
        retry_at = None
        if not result.ok and not final:
            delay = backoff_seconds(row.tries, cfg.delivery_backoff_s, cfg.delivery_backoff_max_s)
            retry_at = self.esc.wall.now() + timedelta(seconds=delay)
        now = self.esc.clock.now()
        async with self.esc.runtime.sessions() as session, session.begin():
            state = await pages.record(session, row.id, result, now=now, retry_at=retry_at)
            if result.ok and notice.action is Action.trigger:
                await self._paged(session, notice, row, now)
            elif final:
                detail = _detail(notice, row, error=result.detail)
                await audit.add(
                    session,
                    notice.clinic_id,
                    notice.escalation_id,
                    now,
                    [AuditEntry("page_failed", "system", detail)],
                )
        outcome = "delivered" if result.ok else ("failed" if final else "retry")
        DELIVERIES.labels("escalation", f"{row.notifier_kind}.{notice.action}.{outcome}").inc()
        level = logging.INFO if result.ok else logging.WARNING
        log.log(
            level,
            "page delivery",
            extra={
                **_detail(notice, row),
                "state": state,
                "tries": row.tries,
                "error": result.detail or None,
            },
        )

    async def _paged(self, session: Any, notice: PageNotice, row: Any, now: Any) -> None:
        """The first delivery of an attempt is the moment the responder was paged."""
        if not await cases.mark_paged(session, notice.escalation_id, notice.attempt, now):
            return
        case = await cases.get(session, notice.escalation_id)
        assert case is not None
        paged = EscalationPaged(
            escalation_id=notice.escalation_id,
            rotation_id=notice.rotation_id,
            responder_id=notice.responder_id,
            attempt=notice.attempt,
        )
        await self.esc.runtime.outbox.stage(session, envelopes(case, (paged,), now))
        await audit.add(
            session,
            notice.clinic_id,
            notice.escalation_id,
            now,
            [AuditEntry("paged", "system", _detail(notice, row))],
        )


def _detail(notice: PageNotice, row: Any, **extra: Any) -> Mapping[str, Any]:
    return {
        "page_id": row.id,
        "escalation_id": notice.escalation_id,
        "attempt": notice.attempt,
        "action": notice.action.value,
        "responder_id": notice.responder_id,
        "notifier_id": row.notifier_id,
        "notifier_kind": row.notifier_kind,
        **extra,
    }
