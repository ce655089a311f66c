"""The SQL of freed slots: each freed appointment's slot, the patients it was offered to, and
the freed slot as each patient's open offer in their conversation."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.domain.conversation import OfferedSlot
from services.messenger.repository import SCHEMA

# --- freed slots and their offers ------------------------------------------------------------


async def record_freed(session: AsyncSession, row: dict[str, Any]) -> bool:
    """A freed appointment, once (a redelivered cancellation finds it)."""
    found = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.freed_slots (offer_id, clinic_id, appointment_id, freed_by, "
                "start, service_line, provider_id, location_id, freed_at, status, updated_at) "
                "VALUES (:offer_id, :clinic_id, :appointment_id, :freed_by, :start, :service_line, "
                ":provider_id, :location_id, :freed_at, 'looking', :freed_at) "
                "ON CONFLICT DO NOTHING RETURNING 1"
            ),
            row,
        )
    ).first()
    return found is not None


async def freed(
    session: AsyncSession, offer_id: str, *, lock: bool = False
) -> dict[str, Any] | None:
    suffix = " FOR UPDATE" if lock else ""
    row = (
        await session.execute(
            text(f"SELECT * FROM {SCHEMA}.freed_slots WHERE offer_id = :o{suffix}"),
            {"o": offer_id},
        )
    ).first()
    return dict(row._mapping) if row else None


async def freed_listing(session: AsyncSession, clinic_id: str, limit: int) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            f"SELECT f.*, (SELECT count(*) FROM {SCHEMA}.slot_offers o "
            "WHERE o.offer_id = f.offer_id) AS offered "
            f"FROM {SCHEMA}.freed_slots f WHERE clinic_id = :c ORDER BY freed_at DESC LIMIT :n"
        ),
        {"c": clinic_id, "n": limit},
    )
    return [dict(r._mapping) for r in rows]


async def update_freed(session: AsyncSession, offer_id: str, at: datetime, **values: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    await session.execute(
        text(f"UPDATE {SCHEMA}.freed_slots SET {sets}, updated_at = :at WHERE offer_id = :o"),
        {**values, "o": offer_id, "at": at},
    )


async def claim(
    session: AsyncSession, offer_id: str, patient_key: str, reply: str, at: datetime
) -> bool:
    """The first "yes" takes the slot: one atomic update, so two can never both win."""
    row = (
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.freed_slots SET status = 'claimed', claimed_by = :pk, "
                "claimed_reply = :r, updated_at = :at WHERE offer_id = :o AND (status = 'offering' "
                "OR (status = 'claimed' AND claimed_by = :pk)) RETURNING 1"
            ),
            {"o": offer_id, "pk": patient_key, "r": reply, "at": at},
        )
    ).first()
    return row is not None


async def booked_elsewhere(
    session: AsyncSession, clinic_id: str, provider_id: str | None, start: datetime
) -> list[dict[str, Any]]:
    """Freed slots still on offer at this provider and time (the EHR booked it another way)."""
    rows = await session.execute(
        text(
            f"SELECT * FROM {SCHEMA}.freed_slots WHERE clinic_id = :c AND start = :s "
            "AND provider_id IS NOT DISTINCT FROM :p AND status IN ('looking', 'offering', "
            "'claimed') FOR UPDATE"
        ),
        {"c": clinic_id, "p": provider_id, "s": start},
    )
    return [dict(r._mapping) for r in rows]


async def record_offers(session: AsyncSession, rows: Iterable[dict[str, Any]]) -> None:
    rows = list(rows)
    if rows:
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.slot_offers (offer_id, patient_key, batch, source, channel, "
                "message_id, offered_at, status) VALUES (:offer_id, :patient_key, :batch, :source, "
                ":channel, :message_id, :offered_at, 'offered') ON CONFLICT DO NOTHING"
            ),
            rows,
        )


async def offers(session: AsyncSession, offer_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            f"SELECT * FROM {SCHEMA}.slot_offers WHERE offer_id = :o ORDER BY batch, offered_at, "
            "patient_key"
        ),
        {"o": offer_id},
    )
    return [dict(r._mapping) for r in rows]


async def mark_offers(
    session: AsyncSession, offer_id: str, patient_keys: Sequence[str], status: str
) -> None:
    if patient_keys:
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.slot_offers SET status = :st WHERE offer_id = :o "
                "AND patient_key = ANY(:pks)"
            ),
            {"o": offer_id, "pks": list(patient_keys), "st": status},
        )


async def offer_in_conversation(
    session: AsyncSession,
    clinic_id: str,
    patient_key: str,
    slot: OfferedSlot,
    expires_at: datetime,
    offer_id: str,
    service_line: str,
) -> None:
    """The freed slot becomes the patient's open offer, and the conversation is about its
    service and provider from now on (a booking names them)."""
    encoded = json.dumps(
        [
            {
                "slot_id": slot.slot_id,
                "start": slot.start.isoformat(),
                "provider_id": slot.provider_id,
                "location_id": slot.location_id,
            }
        ]
    )
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.conversations (patient_key, clinic_id, offer, offer_expires_at, "
            "offer_id, service_line, provider_id, location_id) VALUES (:pk, :c, CAST(:o AS jsonb), "
            ":e, :oid, :sl, :p, :l) ON CONFLICT (patient_key) DO UPDATE SET "
            "offer = EXCLUDED.offer, offer_expires_at = EXCLUDED.offer_expires_at, "
            "offer_id = EXCLUDED.offer_id, service_line = EXCLUDED.service_line, "
            "provider_id = EXCLUDED.provider_id, location_id = EXCLUDED.location_id, "
            "updated_at = now()"
        ),
        {
            "pk": patient_key,
            "c": clinic_id,
            "o": encoded,
            "e": expires_at,
            "oid": offer_id,
            "sl": service_line,
            "p": slot.provider_id,
            "l": slot.location_id,
        },
    )


async def withdraw_from_conversations(
    session: AsyncSession, offer_id: str, patient_keys: Sequence[str]
) -> None:
    """Clear the open offer of these patients where it is still this freed slot."""
    if patient_keys:
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.conversations SET offer = '[]'::jsonb, offer_expires_at = NULL, "
                "offer_id = NULL, updated_at = now() WHERE offer_id = :o "
                "AND patient_key = ANY(:pks)"
            ),
            {"o": offer_id, "pks": list(patient_keys)},
        )


async def on_offer_with_slot(
    session: AsyncSession, clinic_id: str, slot_id: str
) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            f"SELECT * FROM {SCHEMA}.freed_slots WHERE clinic_id = :c AND slot_id = :s "
            "AND status IN ('offering', 'claimed') FOR UPDATE"
        ),
        {"c": clinic_id, "s": slot_id},
    )
    return [dict(r._mapping) for r in rows]


async def holding_offers(
    session: AsyncSession, patient_keys: Sequence[str], now: datetime
) -> set[str]:
    """Patients holding times offered to them that are still open."""
    if not patient_keys:
        return set()
    rows = await session.execute(
        text(
            f"SELECT patient_key FROM {SCHEMA}.conversations WHERE patient_key = ANY(:pks) "
            "AND offer_expires_at > :now AND jsonb_array_length(offer) > 0"
        ),
        {"pks": list(patient_keys), "now": now},
    )
    return {r[0] for r in rows}
