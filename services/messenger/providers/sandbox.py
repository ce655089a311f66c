"""The sandbox provider that ships with Revisit: messages are stored, nobody is texted.

It is what the embedded stack, the simulator and the tests use. Its inbox can be read through
the messenger API, exactly as a phone would show it.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messenger.providers.base import MessageProvider, OutgoingMessage, Receipt
from shared.events.common import Channel

SCHEMA = "messenger"


class SandboxProvider(MessageProvider):
    name = "sandbox"
    channels = frozenset({Channel.sms, Channel.email})

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def send(self, message: OutgoingMessage) -> Receipt:
        async with self._sessions() as session, session.begin():
            row = (
                await session.execute(
                    text(
                        f"INSERT INTO {SCHEMA}.sandbox_messages (message_id, idempotency_key, "
                        "clinic_id, patient_key, channel, direction, address, body, trace_id) "
                        "VALUES (:id, :key, :clinic, :patient, :channel, 'outbound', :to, :body, "
                        ":trace) ON CONFLICT (idempotency_key) DO NOTHING RETURNING message_id"
                    ),
                    {
                        "id": message.message_id,
                        "key": message.idempotency_key,
                        "clinic": message.clinic_id,
                        "patient": message.patient_key,
                        "channel": message.channel.value,
                        "to": message.to,
                        "body": message.body,
                        "trace": message.trace_id,
                    },
                )
            ).first()
            if row is not None:
                return Receipt(self.name, message.message_id, accepted=True)
            first = (
                await session.execute(
                    text(
                        f"SELECT message_id FROM {SCHEMA}.sandbox_messages "
                        "WHERE idempotency_key = :key"
                    ),
                    {"key": message.idempotency_key},
                )
            ).scalar_one()
            return Receipt(self.name, first, accepted=True, duplicate=True)
