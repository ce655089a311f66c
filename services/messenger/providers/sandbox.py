"""The sandbox provider that ships with Revisit: messages are stored, nobody is texted.

It is what the embedded stack, the simulator and the tests use. Its inbox can be read through
the messenger API, exactly as a phone would show it, and a patient's reply can be played in
through ``POST /sandbox/reply``. It is idempotent per idempotency key and can be asked whether a
key was sent, so crash reconciliation works on it as on a real provider. It reports messages
as delivered at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.messenger.providers.base import (
    Lookup,
    LookupHints,
    LookupResult,
    MessageProvider,
    OutgoingMessage,
    Receipt,
    SendResult,
)
from shared.clock import Clock, SystemClock
from shared.events.common import Channel

SCHEMA = "messenger"


class SandboxProvider(MessageProvider):
    name = "sandbox"
    channels = frozenset({Channel.sms, Channel.email})
    sender = "sandbox"

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock | None = None
    ) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()

    async def send(self, message: OutgoingMessage) -> SendResult:
        return (await self.send_many([message]))[0]

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """One insert for the whole batch; a key seen before returns its first message."""
        if not messages:
            return []
        async with self._sessions() as session, session.begin():
            inserted = {
                r[0]
                for r in (
                    await session.execute(
                        text(
                            f"INSERT INTO {SCHEMA}.sandbox_messages (message_id, idempotency_key, "
                            "clinic_id, patient_key, channel, direction, address, subject, body, "
                            "trace_id, sent_at) SELECT *, CAST(:at AS timestamptz) FROM unnest("
                            "CAST(:ids AS text[]), "
                            "CAST(:keys AS text[]), CAST(:clinics AS text[]), "
                            "CAST(:patients AS text[]), CAST(:channels AS text[]), "
                            "CAST(:dirs AS text[]), CAST(:tos AS text[]), "
                            "CAST(:subjects AS text[]), CAST(:bodies AS text[]), "
                            "CAST(:traces AS text[])) "
                            "ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key"
                        ),
                        {
                            "ids": [m.message_id for m in messages],
                            "keys": [m.idempotency_key for m in messages],
                            "clinics": [m.clinic_id for m in messages],
                            "patients": [m.patient_key for m in messages],
                            "channels": [m.channel.value for m in messages],
                            "dirs": ["outbound"] * len(messages),
                            "tos": [m.to for m in messages],
                            "subjects": [m.subject for m in messages],
                            "bodies": [m.body for m in messages],
                            "traces": [m.trace_id for m in messages],
                            "at": self._clock.now(),
                        },
                    )
                ).all()
            }
            earlier = await _first_ids(
                session, [m.idempotency_key for m in messages if m.idempotency_key not in inserted]
            )
        results = []
        for m in messages:
            if m.idempotency_key in inserted:
                receipt = Receipt(self.name, m.message_id, delivered=True)
            else:
                first = earlier.get(m.idempotency_key, m.message_id)
                receipt = Receipt(self.name, first, duplicate=True, delivered=True)
            results.append(SendResult.ok(receipt))
        return results

    async def lookup(
        self, message: OutgoingMessage, hints: LookupHints | None = None
    ) -> LookupResult:
        """By the send's identity, in the sandbox's own record (its idempotency key)."""
        async with self._sessions() as session:
            found = await _first_ids(session, [message.idempotency_key])
        if message.idempotency_key in found:
            receipt = Receipt(self.name, found[message.idempotency_key], delivered=True)
            return LookupResult(Lookup.found, receipt)
        return LookupResult(Lookup.not_found)


async def _first_ids(session: AsyncSession, keys: list[str]) -> dict[str, str]:
    if not keys:
        return {}
    rows = (
        await session.execute(
            text(
                f"SELECT idempotency_key, message_id FROM {SCHEMA}.sandbox_messages "
                "WHERE idempotency_key = ANY(:keys)"
            ),
            {"keys": keys},
        )
    ).all()
    return {r[0]: r[1] for r in rows}


async def store_inbound(
    session: AsyncSession,
    *,
    message_id: str,
    clinic_id: str,
    patient_key: str,
    channel: Channel,
    address: str,
    body: str,
    received_at: datetime,
) -> None:
    """A reply played in as the patient, shown in the phone's sandbox inbox."""
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.sandbox_messages (message_id, idempotency_key, clinic_id, "
            "patient_key, channel, direction, address, body, sent_at) VALUES (:id, :key, :c, :pk, "
            ":ch, 'inbound', :a, :b, :at) ON CONFLICT DO NOTHING"
        ),
        {
            "id": message_id,
            "key": f"in:{message_id}",
            "c": clinic_id,
            "pk": patient_key,
            "ch": channel.value,
            "a": address,
            "b": body,
            "at": received_at,
        },
    )


# --- reading the sandbox (the phone's view) ------------------------------------------------


async def sandbox_messages(session: AsyncSession, patient_key: str) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            text(
                f"SELECT message_id, channel, direction, address, subject, body, trace_id, "
                f"created_at, sent_at FROM {SCHEMA}.sandbox_messages WHERE patient_key = :pk "
                "ORDER BY seq"
            ),
            {"pk": patient_key},
        )
    ).all()
    return [dict(r._mapping) for r in rows]


async def sandbox_inbox(
    session: AsyncSession, clinic_id: str, address: str
) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            text(
                f"SELECT message_id, patient_key, channel, direction, address, subject, body, "
                f"created_at, sent_at FROM {SCHEMA}.sandbox_messages WHERE clinic_id = :c AND "
                "lower(address) = lower(:a) ORDER BY seq"
            ),
            {"c": clinic_id, "a": address},
        )
    ).all()
    return [dict(r._mapping) for r in rows]


async def sandbox_feed(
    session: AsyncSession, clinic_id: str, after: int, limit: int
) -> list[dict[str, Any]]:
    """Every message of a clinic in the order the sandbox took them, from cursor ``after``."""
    rows = (
        await session.execute(
            text(
                f"SELECT seq, message_id, patient_key, channel, direction, address, subject, "
                f"body, sent_at FROM {SCHEMA}.sandbox_messages WHERE clinic_id = :c AND "
                "seq > :after ORDER BY seq LIMIT :limit"
            ),
            {"c": clinic_id, "after": after, "limit": limit},
        )
    ).all()
    return [dict(r._mapping) for r in rows]
