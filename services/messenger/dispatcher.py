"""The dispatcher: hands queued messages to providers, outside any database transaction.

One cycle, for a batch of queued messages:

1. claim (one transaction): lock the rows, check each again against what is true now (the
   patient's card is read with a share lock, so an opt-out committing at the same moment is
   ordered strictly before or after this decision), take what each sender's rate limit allows
   (the rest stays queued: nothing is dropped), and lease the rest as ``sending``. Commit.
2. call the providers with the batch (no transaction open).
3. record each outcome (one transaction): ``sent`` + MessageSent, ``failed`` + MessageFailed,
   back to ``queued`` for a certain non-delivery, or left ``sending`` for the reconciler when
   the provider may or may not have taken it.

The reconciler takes ``sending`` rows whose lease ran out (a crash between 1 and 3, a hang, an
ambiguous answer) and asks the provider: found -> sent; not found -> queued again (and checked
again); cannot tell -> ``unknown`` + MessageFailed(unknown): never re-sent blind.

Only one dispatcher runs per database (a Postgres advisory lock, like the outbox relay), so a
sender's rate limit holds across replicas. The leader checks its lock's connection before every
cycle and steps down when it is gone (a database restart): ``run`` raises and the process's
loop supervisor starts it again, to queue for the lock like any standby. Double sends are
prevented by the leases either way; the lock only keeps the rate limits whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import leases, queue, repository
from services.messenger.context import MessengerContext
from services.messenger.domain.checks import SendWindow, recheck
from services.messenger.domain.system_messages import ALWAYS_ALLOWED, Reply
from services.messenger.ehr import chart
from services.messenger.outcomes import (
    Staged,
    outgoing_message,
    provider_opt_out,
    sent_events,
    settle_failed,
    settle_sent,
    stage_for,
)
from services.messenger.providers.base import (
    Outcome,
    SendResult,
)
from services.messenger.rate_limit import TokenBucket
from services.messenger.reconciler import Reconciler
from shared import pipeline_metrics as pm
from shared.db import plain_dsn
from shared.events.common import Channel, Purpose
from shared.events.messages import (
    FailureReason,
    MessageBlocked,
)
from shared.loops import sleep_or_stop, wait_any
from shared.runtime import Runtime

log = logging.getLogger(__name__)
LEADER_KEY = "messenger:dispatcher"
RECONCILE_EVERY_S = 2.0
MAX_RECONCILE_ATTEMPTS = 10


@dataclass
class CycleStats:
    taken: int = 0
    sent: int = 0
    blocked: int = 0
    deferred: int = 0


class Dispatcher:
    def __init__(self, runtime: Runtime, ctx: MessengerContext) -> None:
        self.runtime = runtime
        self.ctx = ctx
        self.settings = ctx.settings
        self.buckets: dict[tuple[str, str], TokenBucket] = {}
        self._wake = asyncio.Event()
        self._next_reconcile = 0.0
        self.reconciler = Reconciler(runtime, ctx)

    # --- running ------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        dsn = plain_dsn(self.runtime.settings.db.database_url)
        lock_conn = await asyncpg.connect(dsn)
        listener = await asyncpg.connect(dsn)
        await listener.add_listener(queue.QUEUE_CHANNEL, lambda *_: self._wake.set())
        try:
            while not stop.is_set():
                if await lock_conn.fetchval(
                    "SELECT pg_try_advisory_lock(hashtext($1))", LEADER_KEY
                ):
                    pm.LEADER.labels("messenger", "dispatcher").set(1)
                    break
                await sleep_or_stop(stop, 1.0)
            backoff = 0.2
            while not stop.is_set():
                # Still the leader? The lock lives exactly as long as its connection.
                if lock_conn.is_closed() or listener.is_closed():
                    raise ConnectionError("the dispatcher's lock connection closed")
                await asyncio.wait_for(lock_conn.fetchval("SELECT 1"), timeout=10)
                try:
                    stats = await self.dispatch_once()
                    if time.monotonic() >= self._next_reconcile:
                        await self.reconciler.reconcile_once()
                        self._next_reconcile = time.monotonic() + RECONCILE_EVERY_S
                    backoff = 0.2
                except Exception as exc:  # database hiccup: keep the rows, try again
                    log.warning("dispatcher retrying", extra={"error": type(exc).__name__})
                    await sleep_or_stop(stop, backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if stats.taken == 0 or stats.deferred:
                    self._wake.clear()
                    wait = min(self._rate_wait(), 0.5) if stats.deferred else 0.5
                    await wait_any(stop, self._wake, wait)
        finally:
            pm.LEADER.labels("messenger", "dispatcher").set(0)
            for conn in (listener, lock_conn):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), timeout=2)

    def _rate_wait(self) -> float:
        waits = [b.wait_s() for b in self.buckets.values()]
        return max(0.01, min(waits)) if waits else 0.05

    def _bucket(self, provider: str, sender: str) -> TokenBucket:
        key = (provider, sender)
        if key not in self.buckets:
            self.buckets[key] = TokenBucket(self.ctx.rates.get(provider, 10.0))
        return self.buckets[key]

    # --- one cycle ----------------------------------------------------------------------

    async def dispatch_once(self) -> CycleStats:
        rows, stats = await self.claim()
        if rows:
            results = await self.call(rows)
            stats.sent = await self.record(rows, results)
        return stats

    async def reconcile_once(self) -> int:
        return await self.reconciler.reconcile_once()

    async def claim(self) -> tuple[list[dict[str, Any]], CycleStats]:
        """Phase 1 (one transaction): lock, check again, rate-limit, lease. Commits."""
        stats = CycleStats()
        providers = list(self.ctx.providers)
        async with self.runtime.sessions() as session, session.begin():
            rows = await leases.take_queued(session, providers, self.settings.dispatch_batch)
            stats.taken = len(rows)
            if not rows:
                return [], stats
            go = await self._recheck(session, rows, stats)
            chosen: list[dict[str, Any]] = []
            by_sender: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for row in go:
                by_sender.setdefault((row["provider"], row["sender"]), []).append(row)
            for (provider, sender), group in by_sender.items():
                granted = self._bucket(provider, sender).take(len(group))
                chosen.extend(group[:granted])
                stats.deferred += len(group) - granted  # stays queued, in order
            ids = [r["message_id"] for r in chosen]
            await leases.lease(session, ids, self.settings.lease_seconds)
        for row in chosen:
            row["attempts"] += 1
        return chosen, stats

    async def record(self, rows: list[dict[str, Any]], results: list[SendResult]) -> int:
        """Phase 3 (one transaction): each outcome and its events.

        Accepted messages (nearly all of them) are settled with a handful of statements for
        the whole batch; the rare other outcomes one by one."""
        now = self.runtime.clock.now()
        accepted = [
            (row, result.receipt)
            for row, result in zip(rows, results, strict=True)
            if result.outcome is Outcome.accepted and result.receipt is not None
        ]
        others = [
            (row, result)
            for row, result in zip(rows, results, strict=True)
            if not (result.outcome is Outcome.accepted and result.receipt is not None)
        ]
        async with self.runtime.sessions() as session, session.begin():
            settled = await leases.record_sent_many(
                session,
                [(r["message_id"], r["attempts"], rc.provider_message_id) for r, rc in accepted],
                now,
            )
            done = [(r, rc) for r, rc in accepted if r["message_id"] in settled]
            steps = [r for r, _ in done if r["kind"] == "step"]
            await queue.settle_claims(
                session, [(r["sequence_id"], r["step"], "sent", r["provider"]) for r in steps]
            )
            staged: Staged = []
            for index, (row, receipt) in enumerate(done):
                if index % 50 == 49:
                    await asyncio.sleep(0)  # let webhook replies in between a big batch
                staged += sent_events(row, receipt.delivered, now)
            await self.runtime.outbox.stage_batch(session, staged)
            await chart.note_sent(session, [r for r, _ in done])  # to the chart, if switched on
            for row, result in others:
                await self._record(session, row, result)
        return len(done)

    async def _recheck(
        self, session: AsyncSession, rows: list[dict[str, Any]], stats: CycleStats
    ) -> list[dict[str, Any]]:
        now = self.runtime.clock.now()
        patient_keys = [r["patient_key"] for r in rows]
        cards = await repository.contact_cards(session, patient_keys, lock=True)
        steps = [r for r in rows if r["kind"] == "step"]  # answers skip the step-only checks
        cancelled = await repository.cancelled_sequences(session, [r["sequence_id"] for r in steps])
        escalated = await repository.with_open_escalations(
            session, [r["patient_key"] for r in rows if r["kind"] != "reply"]
        )
        go: list[dict[str, Any]] = []
        for row in rows:
            card = cards.get(row["patient_key"])
            channel = Channel(row["channel"])
            if row["kind"] == "reply":
                allowed = Reply(row["reply_kind"]) in ALWAYS_ALLOWED if row["reply_kind"] else False
                if card is not None and card.opted_out(channel) and not allowed:
                    await leases.mark(
                        session, [row["message_id"]], "cancelled", failure="opted_out"
                    )
                    stats.blocked += 1
                    continue
                go.append(row)
                continue
            if row["kind"] == "offer":
                # A freed-slot offer: the step checks again (it belongs to no sequence and
                # reports no step event); refused, it is simply not sent.
                held = recheck(
                    card,
                    channel=channel,
                    purpose=Purpose(row["purpose"] or "care"),
                    expires_at=row["expires_at"],
                    now=now,
                    window=SendWindow.from_json(row.get("send_window")),
                    escalation_open=row["patient_key"] in escalated,
                )
                if held is None:
                    go.append(row)
                else:
                    stats.blocked += 1
                    await leases.mark(
                        session, [row["message_id"]], "blocked", failure=held.reason.value
                    )
                continue
            if row["sequence_id"] in cancelled:
                await leases.mark(session, [row["message_id"]], "cancelled", failure="stopped")
                await queue.settle_claims(
                    session, [(row["sequence_id"], row["step"], "cancelled", None)]
                )
                stats.blocked += 1
                continue
            refused = recheck(
                card,
                channel=channel,
                purpose=Purpose(row["purpose"] or "care"),
                expires_at=row["expires_at"],
                now=now,
                window=SendWindow.from_json(row.get("send_window")),
                escalation_open=row["patient_key"] in escalated,
            )
            if refused is None:
                go.append(row)
                continue
            stats.blocked += 1
            await leases.mark(session, [row["message_id"]], "blocked", failure=refused.reason.value)
            await queue.settle_claims(session, [(row["sequence_id"], row["step"], "blocked", None)])
            await stage_for(
                self.runtime,
                session,
                row,
                MessageBlocked(
                    sequence_id=row["sequence_id"],
                    step=row["step"],
                    channel=channel,
                    reason=refused.reason,
                    retry_after=refused.retry_after,
                ),
                now,
            )
        return go

    async def call(self, rows: list[dict[str, Any]]) -> list[SendResult]:
        """Phase 2: the providers, with no transaction open."""
        by_provider: dict[str, list[int]] = {}
        for i, row in enumerate(rows):
            by_provider.setdefault(row["provider"], []).append(i)
        results: list[SendResult | None] = [None] * len(rows)

        async def run(name: str, indexes: list[int]) -> None:
            provider = self.ctx.providers[name]
            messages = [outgoing_message(rows[i]) for i in indexes]
            try:
                # Bounded well inside the lease, so the reconciler never races a live call.
                got = await asyncio.wait_for(
                    provider.send_many(messages), timeout=self.settings.lease_seconds / 2
                )
            except Exception as exc:
                got = [SendResult(Outcome.ambiguous, detail=type(exc).__name__)] * len(messages)
            for i, result in zip(indexes, got, strict=True):
                results[i] = result

        await asyncio.gather(*(run(n, ix) for n, ix in by_provider.items()))
        return [r or SendResult(Outcome.ambiguous, detail="no result") for r in results]

    async def _record(self, session: AsyncSession, row: dict[str, Any], result: SendResult) -> int:
        now = self.runtime.clock.now()
        mid, attempts = row["message_id"], row["attempts"]
        if result.outcome is Outcome.accepted and result.receipt is not None:
            if await leases.record_sent(
                session, mid, attempts, result.receipt.provider_message_id, now
            ):
                await settle_sent(self.runtime, session, row, result.receipt.delivered, now)
                return 1
            return 0
        if result.outcome is Outcome.rejected:
            if await leases.record_outcome(session, mid, attempts, "failed", failure=result.detail):
                await settle_failed(
                    self.runtime,
                    session,
                    row,
                    result.failure or FailureReason.provider_error,
                    permanent=True,
                    now=now,
                )
                if result.recipient_opted_out:
                    await provider_opt_out(self.runtime, session, row, now)
            return 0
        if result.outcome is Outcome.retry:
            if attempts >= self.settings.max_attempts:
                if await leases.record_outcome(
                    session, mid, attempts, "failed", failure=result.detail
                ):
                    await settle_failed(
                        self.runtime,
                        session,
                        row,
                        FailureReason.provider_error,
                        permanent=False,
                        now=now,
                    )
                return 0
            delay = result.retry_after_s or min(2.0**attempts, 300.0)
            await leases.record_outcome(
                session, mid, attempts, "queued", failure=result.detail, retry_in_s=delay
            )
            return 0
        # Ambiguous: it may have gone. The reconciler asks the provider after a short grace.
        await leases.record_outcome(
            session,
            mid,
            attempts,
            "sending",
            failure=result.detail,
            retry_in_s=min(15.0, self.settings.lease_seconds / 4),
        )
        return 0

    # --- reconciliation ------------------------------------------------------------------
