"""The messenger's tables: contacts, sends (one per sequence step) and the sandbox store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.domain import ContactCard, Practice
from shared.events.common import Channel, ContactKind, ContactUse, Purpose
from shared.events.ehr import ConsentChanged, ConsentStatus, PatientUpserted

SCHEMA = "messenger"


def _best(payload: PatientUpserted, kind: ContactKind) -> str | None:
    usable = [c for c in payload.contacts if c.kind is kind and c.use is not ContactUse.old]
    if kind is ContactKind.phone:
        # Texts go to a mobile number when there is one.
        usable.sort(key=lambda c: (c.use is not ContactUse.mobile, c.rank))
    else:
        usable.sort(key=lambda c: c.rank)
    return usable[0].value if usable else None


async def upsert_contact(
    session: AsyncSession, clinic_id: str, patient_key: str, p: PatientUpserted
) -> None:
    """Keep the newest version of the patient's contact card (older updates never win)."""
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.contacts (patient_key, clinic_id, given_name, phone, email, "
            "language, time_zone, deceased, active, source_updated_at) VALUES (:pk, :c, :g, :ph, "
            ":em, :lang, :tz, :dec, :act, :at) ON CONFLICT (patient_key) DO UPDATE SET "
            "given_name = EXCLUDED.given_name, phone = EXCLUDED.phone, email = EXCLUDED.email, "
            "language = EXCLUDED.language, time_zone = EXCLUDED.time_zone, "
            "deceased = EXCLUDED.deceased, active = EXCLUDED.active, "
            "source_updated_at = EXCLUDED.source_updated_at "
            f"WHERE {SCHEMA}.contacts.source_updated_at <= EXCLUDED.source_updated_at"
        ),
        {
            "pk": patient_key,
            "c": clinic_id,
            "g": p.given_name,
            "ph": _best(p, ContactKind.phone),
            "em": _best(p, ContactKind.email),
            "lang": p.preferred_language or "en",
            "tz": p.time_zone,
            "dec": p.deceased,
            "act": p.active,
            "at": p.source.source_updated_at,
        },
    )


async def apply_consent(session: AsyncSession, patient_key: str, c: ConsentChanged) -> None:
    granted = c.status is ConsentStatus.granted
    if c.purpose is Purpose.marketing:
        sets = "marketing_consent = :v"
        value = granted
    else:
        channels = [c.channel] if c.channel else [Channel.sms, Channel.email]
        sets = ", ".join(f"opted_out_{ch.value} = :v" for ch in channels)
        value = not granted
    await session.execute(
        text(f"UPDATE {SCHEMA}.contacts SET {sets} WHERE patient_key = :pk"),
        {"v": value, "pk": patient_key},
    )


async def contact_card(session: AsyncSession, patient_key: str) -> ContactCard | None:
    r = (
        await session.execute(
            text(f"SELECT * FROM {SCHEMA}.contacts WHERE patient_key = :pk"), {"pk": patient_key}
        )
    ).first()
    if r is None:
        return None
    m = r._mapping
    return ContactCard(
        patient_key=m["patient_key"],
        given_name=m["given_name"],
        phone=m["phone"],
        email=m["email"],
        language=m["language"],
        time_zone=m["time_zone"],
        deceased=m["deceased"],
        active=m["active"],
        opted_out_sms=m["opted_out_sms"],
        opted_out_email=m["opted_out_email"],
        marketing_consent=m["marketing_consent"],
    )


async def claim_send(
    session: AsyncSession, sequence_id: str, step: int, message_id: str, now: datetime
) -> bool:
    """Reserve (sequence, step); False when it was already sent or decided before."""
    row = (
        await session.execute(
            text(
                f"INSERT INTO {SCHEMA}.sends (sequence_id, step, message_id, decided_at) "
                "VALUES (:s, :n, :m, :at) ON CONFLICT DO NOTHING RETURNING message_id"
            ),
            {"s": sequence_id, "n": step, "m": message_id, "at": now},
        )
    ).first()
    return row is not None


async def record_outcome(
    session: AsyncSession, sequence_id: str, step: int, outcome: str, provider: str | None
) -> None:
    await session.execute(
        text(
            f"UPDATE {SCHEMA}.sends SET outcome = :o, provider = :p "
            "WHERE sequence_id = :s AND step = :n"
        ),
        {"o": outcome, "p": provider, "s": sequence_id, "n": step},
    )


async def practice(session: AsyncSession, clinic_id: str) -> Practice:
    r = (
        await session.execute(
            text(f"SELECT name, phone FROM {SCHEMA}.practices WHERE clinic_id = :c"),
            {"c": clinic_id},
        )
    ).first()
    return Practice(r[0], r[1]) if r else Practice("your dermatology practice", "the office")


async def sandbox_messages(session: AsyncSession, patient_key: str) -> list[dict[str, Any]]:
    rows = (
        await session.execute(
            text(
                f"SELECT message_id, channel, direction, address, body, trace_id, created_at "
                f"FROM {SCHEMA}.sandbox_messages WHERE patient_key = :pk ORDER BY created_at"
            ),
            {"pk": patient_key},
        )
    ).all()
    return [dict(r._mapping) for r in rows]
