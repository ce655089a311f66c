"""The SQL of freed slots: the waitlist, who is in a segment for which service, the freed slots
and each patient's offer, the practice's service prices and each clinic's outreach policy."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.domain.conversation import OfferedSlot
from services.messenger.repository import SCHEMA
from shared.outreach_policy import DEFAULT_POLICY, OutreachPolicy

# --- the waitlist ----------------------------------------------------------------------------


async def add_to_waitlist(
    session: AsyncSession,
    *,
    clinic_id: str,
    patient_key: str,
    service_line: str | None,
    provider_id: str | None,
    at: datetime,
    by: str,
) -> tuple[dict[str, Any], bool]:
    """The open entry for this patient, service and provider; True when it is new."""
    found = (
        await session.execute(
            text(
                f"SELECT * FROM {SCHEMA}.waitlist WHERE patient_key = :pk AND removed_at IS NULL "
                "AND service_line IS NOT DISTINCT FROM :sl "
                "AND provider_id IS NOT DISTINCT FROM :p FOR UPDATE"
            ),
            {"pk": patient_key, "sl": service_line, "p": provider_id},
        )
    ).first()
    if found is not None:
        return dict(found._mapping), False
    row = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.waitlist (entry_id, clinic_id, patient_key, service_line, "
                "provider_id, added_at, added_by) VALUES (:id, :c, :pk, :sl, :p, :at, :by) "
                "RETURNING *"
            ),
            {
                "id": str(uuid.uuid4()),
                "c": clinic_id,
                "pk": patient_key,
                "sl": service_line,
                "p": provider_id,
                "at": at,
                "by": by,
            },
        )
    ).one()
    return dict(row._mapping), True


async def remove_from_waitlist(
    session: AsyncSession, entry_id: str, *, at: datetime, by: str
) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(
                f"UPDATE {SCHEMA}.waitlist SET removed_at = coalesce(removed_at, :at), "
                "removed_by = coalesce(removed_by, :by) WHERE entry_id = :id RETURNING *"
            ),
            {"id": entry_id, "at": at, "by": by},
        )
    ).first()
    return dict(row._mapping) if row else None


async def waitlist_entry(session: AsyncSession, entry_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(f"SELECT * FROM {SCHEMA}.waitlist WHERE entry_id = :id"), {"id": entry_id}
        )
    ).first()
    return dict(row._mapping) if row else None


async def waitlist(session: AsyncSession, clinic_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            f"SELECT * FROM {SCHEMA}.waitlist WHERE clinic_id = :c AND removed_at IS NULL "
            "ORDER BY added_at, entry_id"
        ),
        {"c": clinic_id},
    )
    return [dict(r._mapping) for r in rows]


# --- who is in a segment for which service ---------------------------------------------------


async def join_segment(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.recall_members (eligibility_id, clinic_id, patient_key, "
                "segment, service_line, due_on, marketing) VALUES (:e, :c, :pk, :seg, :sl, :due, "
                ":m) ON CONFLICT (eligibility_id) DO UPDATE SET due_on = EXCLUDED.due_on, "
                "marketing = EXCLUDED.marketing"
            ),
            list(rows),
        )


async def leave_segment(
    session: AsyncSession, eligibility_ids: Sequence[str], at: datetime
) -> None:
    """A PatientLeftSegment read before its PatientBecameEligible leaves a closed row behind,
    so the late eligibility cannot reopen it (the insert keeps ``left_at``)."""
    if eligibility_ids:
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.recall_members (eligibility_id, clinic_id, patient_key, "
                "segment, service_line, left_at) SELECT e, '', '', '', '', :at "
                "FROM unnest(CAST(:ids AS text[])) e ON CONFLICT (eligibility_id) "
                "DO UPDATE SET left_at = coalesce(recall_members.left_at, :at)"
            ),
            {"ids": list(eligibility_ids), "at": at},
        )


# --- candidates for a slot -------------------------------------------------------------------


async def candidates(
    session: AsyncSession, clinic_id: str, service_line: str, provider_id: str | None
) -> list[dict[str, Any]]:
    """Waitlist entries that fit the slot (their service or any; their provider or any), and
    open segment memberships for its service line."""
    rows = await session.execute(
        text(
            "SELECT patient_key, 'waitlist' AS source, added_at AS since, NULL::date AS due_on, "
            f"false AS marketing FROM {SCHEMA}.waitlist WHERE clinic_id = :c "
            "AND removed_at IS NULL AND (service_line IS NULL OR service_line = :sl) "
            "AND (provider_id IS NULL OR provider_id IS NOT DISTINCT FROM :p) "
            "UNION ALL SELECT patient_key, 'segment', NULL, due_on, marketing "
            f"FROM {SCHEMA}.recall_members WHERE clinic_id = :c AND service_line = :sl "
            "AND left_at IS NULL"
        ),
        {"c": clinic_id, "sl": service_line, "p": provider_id},
    )
    return [dict(r._mapping) for r in rows]


# --- prices and policies ---------------------------------------------------------------------


async def set_price(
    session: AsyncSession, clinic_id: str, service_line: str, cents: int, currency: str
) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.service_prices VALUES (:c, :sl, :p, :cur) "
            "ON CONFLICT (clinic_id, service_line) DO UPDATE SET "
            "price_cents = EXCLUDED.price_cents, currency = EXCLUDED.currency"
        ),
        {"c": clinic_id, "sl": service_line, "p": cents, "cur": currency},
    )


async def prices(session: AsyncSession, clinic_id: str) -> dict[str, tuple[int, str]]:
    rows = await session.execute(
        text(f"SELECT * FROM {SCHEMA}.service_prices WHERE clinic_id = :c"), {"c": clinic_id}
    )
    return {r.service_line: (r.price_cents, r.currency) for r in rows}


async def remember_policies(
    session: AsyncSession, policies: dict[str, OutreachPolicy], at: datetime
) -> None:
    """The outreach policy each clinic's latest SendStep carried: the sequencer owns the rules,
    and a freed-slot offer (which no step commands) is held to the same ones."""
    if policies:
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.clinic_policies VALUES (:c, CAST(:p AS jsonb), :at) "
                "ON CONFLICT (clinic_id) DO UPDATE SET policy = EXCLUDED.policy, "
                "updated_at = EXCLUDED.updated_at"
            ),
            [{"c": c, "p": p.model_dump_json(), "at": at} for c, p in sorted(policies.items())],
        )


async def policy(session: AsyncSession, clinic_id: str) -> OutreachPolicy:
    raw = (
        await session.execute(
            text(f"SELECT policy FROM {SCHEMA}.clinic_policies WHERE clinic_id = :c"),
            {"c": clinic_id},
        )
    ).scalar()
    if raw is None:
        return DEFAULT_POLICY
    return OutreachPolicy.model_validate(json.loads(raw) if isinstance(raw, str) else raw)


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
