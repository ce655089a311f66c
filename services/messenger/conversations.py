"""Conversation storage: replies as received (the only place their words are kept), the state of
each patient's conversation (last outreach, open slot offer) and the merged conversation view."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.domain.checks import ContactCard
from services.messenger.domain.conversation import ConversationState, OfferedSlot
from services.messenger.practices import DEFAULT_PRACTICE, Practice
from services.messenger.repository import SCHEMA, card_from_row
from shared.events.common import ServiceLine


@dataclass(frozen=True)
class StepContext:
    clinic_id: str
    patient_key: str
    sequence_id: str
    message_id: str
    service_line: str
    provider_id: str | None
    location_id: str | None


async def remember_steps(session: AsyncSession, steps: Sequence[StepContext]) -> None:
    """The outreach a reply will most likely answer: the patient's latest step."""
    if not steps:
        return
    latest = {s.patient_key: s for s in steps}
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.conversations (patient_key, clinic_id, sequence_id, "
            "last_outbound_message_id, service_line, provider_id, location_id) "
            "VALUES (:pk, :c, :s, :m, :sl, :p, :l) ON CONFLICT (patient_key) DO UPDATE SET "
            "sequence_id = EXCLUDED.sequence_id, "
            "last_outbound_message_id = EXCLUDED.last_outbound_message_id, "
            "service_line = EXCLUDED.service_line, provider_id = EXCLUDED.provider_id, "
            "location_id = EXCLUDED.location_id, updated_at = now()"
        ),
        [
            {
                "pk": s.patient_key,
                "c": s.clinic_id,
                "s": s.sequence_id,
                "m": s.message_id,
                "sl": s.service_line,
                "p": s.provider_id,
                "l": s.location_id,
            }
            for s in latest.values()
        ],
    )


def _offer(raw: Any) -> tuple[OfferedSlot, ...]:
    items = raw if isinstance(raw, list) else json.loads(raw or "[]")
    return tuple(
        OfferedSlot(
            slot_id=i["slot_id"],
            start=datetime.fromisoformat(i["start"]),
            provider_id=i.get("provider_id"),
            location_id=i.get("location_id"),
        )
        for i in items
    )


async def load_state(
    session: AsyncSession, patient_key: str, *, lock: bool = False
) -> ConversationState:
    suffix = " FOR UPDATE" if lock else ""
    row = (
        await session.execute(
            text(f"SELECT * FROM {SCHEMA}.conversations WHERE patient_key = :pk{suffix}"),
            {"pk": patient_key},
        )
    ).first()
    if row is None:
        return ConversationState(patient_key=patient_key)
    m = row._mapping
    return ConversationState(
        patient_key=patient_key,
        sequence_id=m["sequence_id"],
        last_outbound_message_id=m["last_outbound_message_id"],
        service_line=ServiceLine(m["service_line"] or ServiceLine.unspecified.value),
        provider_id=m["provider_id"],
        location_id=m["location_id"],
        offer=_offer(m["offer"]),
        offer_expires_at=m["offer_expires_at"],
        offer_id=m["offer_id"],
    )


async def save_offer(
    session: AsyncSession,
    clinic_id: str,
    patient_key: str,
    offer: Sequence[OfferedSlot],
    expires_at: datetime | None,
    offer_id: str | None = None,
) -> None:
    """The patient's open offer (replacing any other); ``offer_id`` for a freed slot."""
    encoded = json.dumps(
        [
            {
                "slot_id": s.slot_id,
                "start": s.start.isoformat(),
                "provider_id": s.provider_id,
                "location_id": s.location_id,
            }
            for s in offer
        ]
    )
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.conversations (patient_key, clinic_id, offer, offer_expires_at, "
            "offer_id) VALUES (:pk, :c, CAST(:o AS jsonb), :e, :oid) ON CONFLICT (patient_key) "
            "DO UPDATE SET offer = EXCLUDED.offer, offer_expires_at = EXCLUDED.offer_expires_at, "
            "offer_id = EXCLUDED.offer_id, updated_at = now()"
        ),
        {"pk": patient_key, "c": clinic_id, "o": encoded, "e": expires_at, "oid": offer_id},
    )


async def find_inbound(
    session: AsyncSession, provider: str, provider_message_id: str
) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(
                f"SELECT message_id, patient_key, intent FROM {SCHEMA}.inbound "
                "WHERE provider = :p AND provider_message_id = :pid"
            ),
            {"p": provider, "pid": provider_message_id},
        )
    ).first()
    return dict(row._mapping) if row else None


async def store_inbound(
    session: AsyncSession, *, reading: dict[str, Any] | None, **values: Any
) -> bool:
    """Store a reply once per (provider, provider message id); False for a redelivery.
    ``reading``: what it was read as (consent, safety, confidence, summary, every layer)."""
    reading = reading or {}
    row = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.inbound (message_id, clinic_id, patient_key, channel, "
                "provider, provider_message_id, from_address, to_address, body, intent, barrier, "
                "red_flags, sequence_id, in_reply_to, received_at, consent, safety, confidence, "
                "needs_person, summary, reading) VALUES (:message_id, :clinic_id, :patient_key, "
                ":channel, :provider, :provider_message_id, :from_address, :to_address, :body, "
                ":intent, :barrier, :red_flags, :sequence_id, :in_reply_to, :received_at, "
                ":consent, :safety, :confidence, :needs_person, :summary, CAST(:reading AS jsonb)) "
                "ON CONFLICT DO NOTHING RETURNING 1"
            ),
            {
                **values,
                "consent": reading.get("consent"),
                "safety": reading.get("safety"),
                "confidence": reading.get("confidence"),
                "needs_person": reading.get("needs_person"),
                "summary": reading.get("summary"),
                "reading": json.dumps(reading["reading"]) if "reading" in reading else None,
            },
        )
    ).first()
    return row is not None


async def stored_reply(session: AsyncSession, message_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(f"SELECT * FROM {SCHEMA}.inbound WHERE message_id = :m"), {"m": message_id}
        )
    ).first()
    return dict(row._mapping) if row else None


async def note_second_reading(
    session: AsyncSession,
    message_id: str,
    note: dict[str, Any],
    *,
    label: str | None = None,
    safety: str | None = None,
) -> None:
    """Keep the outside reading beside the reply; a red flag or revocation it added raises the
    stored reading too (never lowers it)."""
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.inbound SET reading = coalesce(reading, '{{}}'::jsonb) || "
            "jsonb_build_object('second_reading', CAST(:n AS jsonb)), "
            "intent = CASE WHEN CAST(:label AS text) = 'red_flag' OR (CAST(:label AS text) "
            "IS NOT NULL AND intent IS DISTINCT FROM 'red_flag') THEN :label ELSE intent END, "
            "safety = coalesce(CAST(:safety AS text), safety), "
            "needs_person = needs_person OR CAST(:safety AS text) IS NOT NULL, "
            "consent = CASE WHEN :label = 'opt_out' THEN 'revoke' ELSE consent END "
            "WHERE message_id = :m"
        ),
        {"m": message_id, "n": json.dumps(note), "label": label, "safety": safety},
    )


async def conversation(session: AsyncSession, patient_key: str) -> list[dict[str, Any]]:
    """Every message to and from the patient, oldest first."""
    rows = (
        await session.execute(
            text(
                "SELECT * FROM ("
                "SELECT message_id, 'inbound' AS direction, channel, body, NULL AS subject, "
                "intent, barrier, red_flags, sequence_id, NULL AS step, NULL AS status, "
                "in_reply_to, received_at AS at, provider, consent, safety, confidence, "
                "needs_person, summary, reading "
                f"FROM {SCHEMA}.inbound WHERE patient_key = :pk "
                "UNION ALL "
                "SELECT message_id, 'outbound', channel, body, subject, NULL, NULL, NULL, "
                "sequence_id, step, status, in_reply_to, created_at, provider, NULL, NULL, NULL, "
                "NULL, NULL, NULL "
                f"FROM {SCHEMA}.outgoing WHERE patient_key = :pk) m ORDER BY at, direction"
            ),
            {"pk": patient_key},
        )
    ).all()
    return [dict(r._mapping) for r in rows]


@dataclass(frozen=True)
class ReplyContext:
    """Everything a reply needs to be understood, read in one round trip."""

    card: ContactCard
    state: ConversationState
    practice: Practice


_CONTEXT = text(
    f"""
    WITH target AS (
        SELECT c.patient_key FROM {SCHEMA}.contacts c
        LEFT JOIN LATERAL (
            SELECT max(o.seq) AS last FROM {SCHEMA}.outgoing o
            WHERE o.patient_key = c.patient_key AND o.address = :addr
        ) m ON true
        WHERE CASE WHEN CAST(:pk AS text) IS NOT NULL THEN c.patient_key = :pk
              ELSE (CASE WHEN :channel = 'sms' THEN c.phone = :addr
                         ELSE lower(c.email) = lower(:addr) END)
                   AND c.clinic_id = coalesce(
                       CAST(:clinic AS text),
                       (SELECT p.clinic_id FROM {SCHEMA}.practices p
                        WHERE (:channel = 'sms' AND p.sms_number = :to)
                           OR (:channel = 'email' AND lower(p.email_address) = lower(:to))
                        LIMIT 1),
                       c.clinic_id)
              END
        ORDER BY m.last DESC NULLS LAST, c.patient_key
        LIMIT 1
    )
    SELECT c.*, s.sequence_id AS s_sequence_id,
           s.last_outbound_message_id AS s_last_outbound_message_id,
           s.service_line AS s_service_line, s.provider_id AS s_provider_id,
           s.location_id AS s_location_id, s.offer AS s_offer,
           s.offer_expires_at AS s_offer_expires_at, s.offer_id AS s_offer_id,
           p.name AS p_name, p.phone AS p_phone, p.booking_url AS p_booking_url,
           p.sms_number AS p_sms_number, p.email_address AS p_email_address,
           p.time_zone AS p_time_zone
    FROM target t
    JOIN {SCHEMA}.contacts c ON c.patient_key = t.patient_key
    LEFT JOIN {SCHEMA}.conversations s ON s.patient_key = t.patient_key
    LEFT JOIN {SCHEMA}.practices p ON p.clinic_id = c.clinic_id
    FOR UPDATE OF c
    """
)


async def reply_context(
    session: AsyncSession,
    *,
    channel: str,
    address: str,
    to: str | None,
    clinic_id: str | None,
    patient_key: str | None,
) -> ReplyContext | None:
    """The patient a reply comes from (the one most recently messaged at that address, in the
    clinic the receiving number belongs to), their card, conversation and practice.

    The card is locked: two replies from one patient are handled one after the other (a
    second STOP sees the first), and a send decision reading the card waits for this one."""
    row = (
        await session.execute(
            _CONTEXT,
            {"pk": patient_key, "channel": channel, "addr": address, "to": to, "clinic": clinic_id},
        )
    ).first()
    if row is None:
        return None
    m = row._mapping
    state = ConversationState(
        patient_key=m["patient_key"],
        sequence_id=m["s_sequence_id"],
        last_outbound_message_id=m["s_last_outbound_message_id"],
        service_line=ServiceLine(m["s_service_line"] or ServiceLine.unspecified.value),
        provider_id=m["s_provider_id"],
        location_id=m["s_location_id"],
        offer=_offer(m["s_offer"]) if m["s_offer"] is not None else (),
        offer_expires_at=m["s_offer_expires_at"],
        offer_id=m["s_offer_id"],
    )
    practice = (
        Practice(
            m["p_name"],
            m["p_phone"],
            m["p_booking_url"],
            m["p_sms_number"],
            m["p_email_address"],
            m["p_time_zone"],
        )
        if m["p_name"] is not None
        else DEFAULT_PRACTICE
    )
    return ReplyContext(card_from_row(m), state, practice)
