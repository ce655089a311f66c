"""Freed slots in the read model: the rows and the figures /metrics and reports show."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.domain.freed_slots import FreedSlotRow
from services.metrics.repository import SCHEMA


async def merge(session: AsyncSession, rows: Iterable[FreedSlotRow]) -> None:
    found = [asdict(r) for r in rows]
    if not found:
        return
    t = f"{SCHEMA}.freed_slots"
    await session.execute(
        text(
            f"INSERT INTO {t} (offer_id, clinic_id, service_line, start, freed_at, offers, "
            "first_offered_at, refilled_at, price_cents, currency) VALUES (:offer_id, "
            ":clinic_id, :service_line, :start, :freed_at, :offers, :first_offered_at, "
            ":refilled_at, :price_cents, :currency) ON CONFLICT (offer_id) DO UPDATE SET "
            f"freed_at = least({t}.freed_at, EXCLUDED.freed_at), "
            f"offers = {t}.offers + EXCLUDED.offers, "
            f"first_offered_at = least({t}.first_offered_at, EXCLUDED.first_offered_at), "
            f"refilled_at = least({t}.refilled_at, EXCLUDED.refilled_at), "
            f"price_cents = coalesce({t}.price_cents, EXCLUDED.price_cents), "
            f"currency = coalesce({t}.currency, EXCLUDED.currency)"
        ),
        found,
    )


async def totals(session: AsyncSession, clinic_id: str | None = None) -> list[dict[str, Any]]:
    """Per clinic and service: slots freed, offered and refilled, patients offered, and the
    revenue kept."""
    rows = await session.execute(
        text(
            "SELECT clinic_id, service_line, count(*) AS freed, "
            "count(*) FILTER (WHERE offers > 0) AS offered, "
            "coalesce(sum(offers), 0) AS offers, "
            "count(refilled_at) AS refilled, "
            "coalesce(sum(price_cents) FILTER (WHERE refilled_at IS NOT NULL), 0) "
            "AS revenue_kept_cents "
            f"FROM {SCHEMA}.freed_slots "
            "WHERE CAST(:c AS text) IS NULL OR clinic_id = :c GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        {"c": clinic_id},
    )
    return [dict(r._mapping) for r in rows]


async def refill_times(session: AsyncSession, clinic_id: str | None = None) -> list[dict[str, Any]]:
    """Per clinic: from the cancellation to the refill, median and p90 in seconds."""
    rows = await session.execute(
        text(
            "SELECT clinic_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS p50, "
            "percentile_cont(0.9) WITHIN GROUP (ORDER BY s) AS p90 FROM (SELECT clinic_id, "
            "extract(epoch FROM refilled_at - freed_at) AS s "
            f"FROM {SCHEMA}.freed_slots WHERE refilled_at IS NOT NULL "
            "AND (CAST(:c AS text) IS NULL OR clinic_id = :c)) t GROUP BY 1 ORDER BY 1"
        ),
        {"c": clinic_id},
    )
    return [dict(r._mapping) for r in rows]


async def report(
    session: AsyncSession,
    clinics: Sequence[str] | None,
    start: date | None,
    end: date | None,
) -> list[dict[str, Any]]:
    """Per clinic and service, for slots freed in the date range (UTC days, inclusive)."""
    rows = await session.execute(
        text(
            "SELECT clinic_id, service_line, count(*) AS freed, "
            "count(*) FILTER (WHERE offers > 0) AS offered, "
            "coalesce(sum(offers), 0) AS patients_offered, count(refilled_at) AS refilled, "
            "coalesce(sum(price_cents) FILTER (WHERE refilled_at IS NOT NULL), 0) "
            "AS revenue_kept_cents, "
            "round(CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM "
            "refilled_at - freed_at)) / 60 AS numeric), 1) AS time_to_refill_p50_minutes, "
            "round(CAST(percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM "
            "refilled_at - freed_at)) / 60 AS numeric), 1) AS time_to_refill_p90_minutes "
            f"FROM {SCHEMA}.freed_slots WHERE (CAST(:clinics AS text[]) IS NULL "
            "OR clinic_id = ANY(:clinics)) "
            "AND (CAST(:start AS date) IS NULL "
            "OR CAST(freed_at AT TIME ZONE 'UTC' AS date) >= :start) "
            "AND (CAST(:end AS date) IS NULL "
            "OR CAST(freed_at AT TIME ZONE 'UTC' AS date) <= :end) "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        {"clinics": list(clinics) if clinics is not None else None, "start": start, "end": end},
    )
    out = []
    for r in rows:
        row = dict(r._mapping)
        for key in ("time_to_refill_p50_minutes", "time_to_refill_p90_minutes"):
            row[key] = float(row[key]) if row[key] is not None else None
        row["refill_rate"] = round(row["refilled"] / row["freed"], 3) if row["freed"] else None
        out.append(row)
    return out
