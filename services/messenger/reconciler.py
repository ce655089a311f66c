"""The reconciler: settles messages left "sending" by a crash, a hang or an ambiguous answer.

It takes the ones whose lease ran out and asks their provider, by the send's identity (one
per sequence, step and channel; never by its words): found -> sent (and reported);
not found -> queued again (every send-time check runs again before it goes); the provider
cannot tell (SMTP) or could not be asked for ten tries -> ``unknown`` + MessageFailed(unknown).
An ``unknown`` message is never re-sent: a person checks it (``GET /sends?status=unknown``).
"""

from __future__ import annotations

import asyncio

from services.messenger import leases
from services.messenger.context import MessengerContext
from services.messenger.outcomes import outgoing_message, settle_failed, settle_sent
from services.messenger.providers.base import Lookup, LookupHints
from shared.events.messages import FailureReason
from shared.runtime import Runtime

MAX_RECONCILE_ATTEMPTS = 10


class Reconciler:
    def __init__(self, runtime: Runtime, ctx: MessengerContext) -> None:
        self.runtime = runtime
        self.ctx = ctx
        self.settings = ctx.settings

    async def reconcile_once(self) -> int:
        providers = list(self.ctx.providers)
        async with self.runtime.sessions() as session, session.begin():
            rows = await leases.take_expired_leases(session, providers, self.settings.lease_seconds)
            hints = {
                row["message_id"]: LookupHints(*await leases.lookup_hints(session, row))
                for row in rows
            }
        settled = 0
        for row in rows:
            provider = self.ctx.providers[row["provider"]]
            try:
                found = await asyncio.wait_for(
                    provider.lookup(outgoing_message(row), hints[row["message_id"]]),
                    timeout=self.settings.provider_timeout_s,
                )
                answer, receipt = found.answer, found.receipt
            except Exception:
                answer, receipt = Lookup.unavailable, None
            now = self.runtime.clock.now()
            async with self.runtime.sessions() as session, session.begin():
                if answer is Lookup.found and receipt is not None:
                    if await leases.record_sent(
                        session,
                        row["message_id"],
                        row["attempts"],
                        receipt.provider_message_id,
                        now,
                    ):
                        await settle_sent(self.runtime, session, row, receipt.delivered, now)
                        settled += 1
                elif answer is Lookup.not_found:
                    await leases.requeue(session, row["message_id"])  # checked again before sending
                elif (
                    answer is Lookup.cannot_tell
                    or row["reconcile_attempts"] + 1 >= MAX_RECONCILE_ATTEMPTS
                ) and await leases.record_outcome(
                    session,
                    row["message_id"],
                    row["attempts"],
                    "unknown",
                    failure="delivery unknown after a crash or timeout",
                ):
                    await settle_failed(
                        self.runtime,
                        session,
                        row,
                        FailureReason.unknown,
                        permanent=False,
                        now=now,
                        outcome="unknown",
                    )
        return settled
