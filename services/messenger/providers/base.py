"""The one interface every message provider implements (SMS, e-mail, sandbox).

``send`` must be idempotent per ``idempotency_key`` (``<sequence_id>:<step>``): called again
with the same key after a crash, it returns the first receipt instead of messaging twice.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from shared.events.common import Channel


@dataclass(frozen=True)
class OutgoingMessage:
    message_id: str
    idempotency_key: str
    clinic_id: str
    patient_key: str
    channel: Channel
    to: str
    body: str
    trace_id: str | None = None


@dataclass(frozen=True)
class Receipt:
    provider: str
    provider_message_id: str
    accepted: bool
    duplicate: bool = False


class MessageProvider(abc.ABC):
    name: str
    channels: frozenset[Channel]

    @abc.abstractmethod
    async def send(self, message: OutgoingMessage) -> Receipt:
        """Hand the message to the provider; idempotent per ``message.idempotency_key``."""
