"""The practice's names and numbers (what templates say and where replies arrive), and the
display names of its providers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger.repository import SCHEMA


@dataclass(frozen=True)
class Practice:
    name: str
    phone: str
    booking_url: str | None = None
    sms_number: str | None = None
    email_address: str | None = None
    time_zone: str | None = None


DEFAULT_PRACTICE = Practice("your dermatology practice", "the office")


def _practice(m: Any) -> Practice:
    return Practice(
        m["name"], m["phone"], m["booking_url"], m["sms_number"], m["email_address"], m["time_zone"]
    )


async def practice(session: AsyncSession, clinic_id: str) -> Practice:
    return (await practices(session, [clinic_id])).get(clinic_id, DEFAULT_PRACTICE)


async def practices(session: AsyncSession, clinic_ids: Iterable[str]) -> dict[str, Practice]:
    rows = (
        await session.execute(
            text(f"SELECT * FROM {SCHEMA}.practices WHERE clinic_id = ANY(:c)"),
            {"c": sorted(set(clinic_ids))},
        )
    ).all()
    return {r._mapping["clinic_id"]: _practice(r._mapping) for r in rows}


async def save_practice(session: AsyncSession, clinic_id: str, p: Practice) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.practices (clinic_id, name, phone, booking_url, sms_number, "
            "email_address, time_zone) VALUES (:c, :n, :p, :b, :s, :e, :tz) "
            "ON CONFLICT (clinic_id) DO UPDATE SET name = EXCLUDED.name, phone = EXCLUDED.phone, "
            "booking_url = EXCLUDED.booking_url, sms_number = EXCLUDED.sms_number, "
            "email_address = EXCLUDED.email_address, time_zone = EXCLUDED.time_zone"
        ),
        {
            "c": clinic_id,
            "n": p.name,
            "p": p.phone,
            "b": p.booking_url,
            "s": p.sms_number,
            "e": p.email_address,
            "tz": p.time_zone,
        },
    )


async def provider_names(
    session: AsyncSession, pairs: Iterable[tuple[str, str | None]]
) -> dict[tuple[str, str], str]:
    wanted = sorted({(c, p) for c, p in pairs if p})
    if not wanted:
        return {}
    rows = (
        await session.execute(
            text(
                f"SELECT clinic_id, provider_id, display_name FROM {SCHEMA}.practice_providers "
                "WHERE clinic_id = ANY(:c) AND provider_id = ANY(:p)"
            ),
            {"c": [c for c, _ in wanted], "p": [p for _, p in wanted]},
        )
    ).all()
    return {(r[0], r[1]): r[2] for r in rows}


async def providers_of(session: AsyncSession, clinic_id: str) -> dict[str, str]:
    """Every provider of the practice with a display name: id -> name."""
    rows = (
        await session.execute(
            text(
                f"SELECT provider_id, display_name FROM {SCHEMA}.practice_providers "
                "WHERE clinic_id = :c ORDER BY provider_id"
            ),
            {"c": clinic_id},
        )
    ).all()
    return {r[0]: r[1] for r in rows}


async def save_provider(
    session: AsyncSession, clinic_id: str, provider_id: str, display_name: str
) -> None:
    await session.execute(
        text(
            f"INSERT INTO {SCHEMA}.practice_providers (clinic_id, provider_id, display_name) "
            "VALUES (:c, :p, :n) ON CONFLICT (clinic_id, provider_id) "
            "DO UPDATE SET display_name = EXCLUDED.display_name"
        ),
        {"c": clinic_id, "p": provider_id, "n": display_name},
    )
