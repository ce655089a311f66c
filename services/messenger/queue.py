"""The durable send queue (``messenger.outgoing``) and the step claims (``messenger.sends``).

Every outbound message is a row here before any provider hears of it. Its life:

    queued -> sending (leased) -> sent | failed | unknown
       \\-> blocked / cancelled (a send-time check refused it at dispatch)

``sends`` holds one claim per (sequence, step): a step is claimed once, and can be claimed
again only if its earlier attempt ended ``blocked`` (quiet hours, a cap), never after it was
sent or might have been.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.repository import SCHEMA

MESSAGE_ID_NAMESPACE = uuid.UUID("0b8f3c52-1a5e-4d0f-8f1e-6c2d7b9a4e31")


def step_message_id(idempotency_key: str) -> str:
    """Deterministic per (sequence, step): the provider idempotency key names one message."""
    return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, idempotency_key))


def send_ref(
    kind: str, sequence_id: str | None, step: int | None, channel: str, idempotency_key: str
) -> str:
    """The identity a send carries to its provider: one per (sequence, step, channel) for an
    outreach step, the answer's own key for an answer. A provider with an idempotency key
    (the sandbox) dedupes on it; for one without (Twilio) it travels in the status-callback
    URL, so an ambiguous send is found again by what it is, never by its words."""
    if kind == "step" and sequence_id is not None and step is not None:
        return f"{sequence_id}:{step}:{channel}"
    return idempotency_key


@dataclass(frozen=True)
class QueuedMessage:
    message_id: str
    idempotency_key: str
    clinic_id: str
    patient_key: str
    kind: str  # step | reply | offer (a freed slot offered: checked again like a step)
    channel: str
    provider: str
    sender: str
    address: str
    body: str
    created_at: datetime
    subject: str | None = None
    sequence_id: str | None = None
    step: int | None = None
    reply_kind: str | None = None
    in_reply_to: str | None = None
    is_fallback: bool = False
    template_key: str | None = None
    template_id: int | None = None
    purpose: str | None = None
    expires_at: datetime | None = None
    trace_headers: dict[str, str] = field(default_factory=dict)
    # A step's clinic policy, zone and state (SendWindow.to_json), checked again at dispatch.
    send_window: dict[str, Any] | None = None
    correlation_id: uuid.UUID | None = None
    causation_id: uuid.UUID | None = None

    @property
    def priority(self) -> int:
        return 0 if self.kind == "reply" else 1


async def claim_steps(
    session: AsyncSession, claims: Sequence[tuple[str, int, str, str]], now: datetime
) -> set[tuple[str, int]]:
    """Claim (sequence, step, message_id, channel) rows; returns the ones claimed now."""
    if not claims:
        return set()
    rows = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.sends (sequence_id, step, message_id, channel, decided_at) "
                "SELECT * FROM unnest(CAST(:s AS text[]), CAST(:n AS int[]), CAST(:m AS text[]), "
                "CAST(:ch AS text[]), CAST(:at AS timestamptz[])) "
                "ON CONFLICT (sequence_id, step) DO UPDATE SET decided_at = EXCLUDED.decided_at, "
                "channel = EXCLUDED.channel, outcome = NULL "
                f"WHERE {SCHEMA}.sends.outcome = 'blocked' RETURNING sequence_id, step"
            ),
            {
                "s": [c[0] for c in claims],
                "n": [c[1] for c in claims],
                "m": [c[2] for c in claims],
                "ch": [c[3] for c in claims],
                "at": [now] * len(claims),
            },
        )
    ).all()
    return {(r[0], r[1]) for r in rows}


async def settle_claims(
    session: AsyncSession, outcomes: Iterable[tuple[str, int, str, str | None]]
) -> None:
    """Record (sequence, step, outcome, provider); outcome 'blocked' releases the claim."""
    rows = list(outcomes)
    if not rows:
        return
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.sends s SET outcome = v.o, provider = v.p FROM unnest("
            "CAST(:s AS text[]), CAST(:n AS int[]), CAST(:o AS text[]), CAST(:p AS text[])) "
            "AS v(s, n, o, p) WHERE s.sequence_id = v.s AND s.step = v.n"
        ),
        {
            "s": [r[0] for r in rows],
            "n": [r[1] for r in rows],
            "o": [r[2] for r in rows],
            "p": [r[3] for r in rows],
        },
    )


_INSERT_COLUMNS = (
    "message_id",
    "idempotency_key",
    "clinic_id",
    "patient_key",
    "kind",
    "priority",
    "sequence_id",
    "step",
    "reply_kind",
    "in_reply_to",
    "channel",
    "is_fallback",
    "provider",
    "sender",
    "address",
    "subject",
    "body",
    "template_key",
    "template_id",
    "purpose",
    "expires_at",
    "status",
    "trace_headers",
    "send_window",
    "correlation_id",
    "causation_id",
    "created_at",
    "send_ref",
)


async def enqueue(session: AsyncSession, messages: Sequence[QueuedMessage]) -> None:
    """Queue messages; a message that was blocked at dispatch is queued again (same key)."""
    if not messages:
        return
    values = ", ".join(
        f"CAST(:{c} AS jsonb)" if c in ("trace_headers", "send_window") else f":{c}"
        for c in _INSERT_COLUMNS
    )
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.outgoing ({', '.join(_INSERT_COLUMNS)}) VALUES ({values}) "
            "ON CONFLICT (message_id) DO UPDATE SET status = 'queued', body = EXCLUDED.body, "
            "subject = EXCLUDED.subject, channel = EXCLUDED.channel, address = EXCLUDED.address, "
            "provider = EXCLUDED.provider, sender = EXCLUDED.sender, "
            "expires_at = EXCLUDED.expires_at, trace_headers = EXCLUDED.trace_headers, "
            "send_window = EXCLUDED.send_window, "
            "send_ref = EXCLUDED.send_ref, "
            "available_at = now(), updated_at = now() "
            f"WHERE {SCHEMA}.outgoing.status IN ('blocked', 'cancelled')"
        ),
        [
            {
                **{c: getattr(m, c, None) for c in _INSERT_COLUMNS},
                "priority": m.priority,
                "status": "queued",
                "trace_headers": json.dumps(m.trace_headers),
                "send_window": json.dumps(m.send_window) if m.send_window else None,
                "send_ref": send_ref(m.kind, m.sequence_id, m.step, m.channel, m.idempotency_key),
            }
            for m in messages
        ],
    )
    await session.execute(text(f"SELECT pg_notify('{QUEUE_CHANNEL}', '')"))


QUEUE_CHANNEL = "messenger_outgoing"


async def recent_outreach(
    session: AsyncSession, patient_keys: Sequence[str], since: datetime
) -> dict[str, list[datetime]]:
    """When each patient was last sent (or is being sent) outreach since ``since``: every step,
    and every freed-slot offer (no patient asked for that message, so it counts like a step)."""
    if not patient_keys:
        return {}
    rows = (
        await session.execute(
            text(
                f"SELECT patient_key, created_at FROM {SCHEMA}.outgoing "
                "WHERE kind IN ('step', 'offer') "
                "AND patient_key = ANY(:pks) AND created_at > :since "
                "AND status IN ('queued', 'sending', 'sent', 'unknown')"
            ),
            {"pks": list(set(patient_keys)), "since": since},
        )
    ).all()
    out: dict[str, list[datetime]] = {}
    for pk, at in rows:
        out.setdefault(pk, []).append(at)
    return out


async def cancel_sequence(session: AsyncSession, sequence_id: str) -> None:
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.outgoing SET status = 'cancelled', updated_at = now() "
            "WHERE sequence_id = :s AND kind = 'step' AND status = 'queued'"
        ),
        {"s": sequence_id},
    )
