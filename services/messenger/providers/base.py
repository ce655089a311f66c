"""The one interface every message provider implements (Twilio SMS, SMTP e-mail, sandbox).

A send has four possible outcomes, and the dispatcher treats each differently:

- ``accepted``: the provider took the message (a receipt names it);
- ``rejected``: it never will (invalid number, unsubscribed recipient): do not retry;
- ``retry``: it certainly did NOT take it (connection refused, 429, a 4xx SMTP reply):
  safe to send again later;
- ``ambiguous``: it may have (timeout after the request left, a 5xx, a dropped connection):
  never sent again blind; the reconciler asks the provider with ``lookup``.

``lookup`` answers found / not found / cannot tell, by the send's identity
(``OutgoingMessage.idempotency_key``: one per sequence, step and channel), never by its words.
A provider that cannot be asked (SMTP) says "cannot tell", and the message is marked
``unknown`` for a person to check.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.events.common import Channel
from shared.events.messages import FailureReason


@dataclass(frozen=True)
class OutgoingMessage:
    message_id: str
    idempotency_key: str
    clinic_id: str
    patient_key: str
    channel: Channel
    to: str
    body: str
    subject: str | None = None
    trace_id: str | None = None
    attempted_at: datetime | None = None  # when the (first) ambiguous attempt started


@dataclass(frozen=True)
class Receipt:
    provider: str
    provider_message_id: str
    accepted: bool = True
    duplicate: bool = False
    delivered: bool = False  # the provider already knows it reached the patient (sandbox)


class Outcome(StrEnum):
    accepted = "accepted"
    rejected = "rejected"
    retry = "retry"
    ambiguous = "ambiguous"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    receipt: Receipt | None = None
    failure: FailureReason | None = None
    detail: str = ""  # PHI-free (an error code, an exception class)
    recipient_opted_out: bool = False  # the provider says the number sent STOP to it
    retry_after_s: float | None = None

    @classmethod
    def ok(cls, receipt: Receipt) -> SendResult:
        return cls(Outcome.accepted, receipt)


class Lookup(StrEnum):
    found = "found"
    not_found = "not_found"
    cannot_tell = "cannot_tell"
    unavailable = "unavailable"  # the provider could not be asked just now: try later


@dataclass(frozen=True)
class LookupHints:
    """What Revisit knows that helps a provider without idempotency keys (Twilio) tell its
    messages apart: the provider ids other sends to this address already hold, and how many
    sends to this address are in doubt now."""

    attributed: frozenset[str] = frozenset()
    in_doubt: int = 1


@dataclass(frozen=True)
class LookupResult:
    answer: Lookup
    receipt: Receipt | None = None


class MessageProvider(abc.ABC):
    name: str
    channels: frozenset[Channel]
    sender: str = ""  # the from-number / from-address: rate limits are per sender
    concurrency: int = 8

    @abc.abstractmethod
    async def send(self, message: OutgoingMessage) -> SendResult:
        """Hand one message to the provider; see the module docstring for the outcomes."""

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send a batch (concurrently, up to ``concurrency`` at a time)."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(message: OutgoingMessage) -> SendResult:
            async with gate:
                try:
                    return await self.send(message)
                except Exception as exc:  # a bug or an unexpected failure: never re-send blind
                    return SendResult(Outcome.ambiguous, detail=type(exc).__name__)

        return list(await asyncio.gather(*(one(m) for m in messages)))

    async def lookup(
        self, message: OutgoingMessage, hints: LookupHints | None = None
    ) -> LookupResult:
        """Did an earlier, ambiguous attempt reach the provider?"""
        return LookupResult(Lookup.cannot_tell)

    async def close(self) -> None:
        return None
