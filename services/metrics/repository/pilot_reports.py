"""Aggregations behind the pilot report: both arms, the weeks, the previous weeks' candidates,
the objections by barrier with references to example replies, and the pilots' plans."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.domain.pilots import OBJECTION_INTENTS
from services.metrics.repository import SCHEMA
from services.metrics.repository.reports import (
    REPLY_FIGURES,
    Filters,
    _pct,
    _reply_figures,
    _rows,
    _where,
)
from shared.events.pilot import PilotPlan


async def pilot_ids(session: AsyncSession, f: Filters) -> list[dict[str, Any]]:
    where, params = _where(f, "e", "e.started_at")
    return await _rows(
        session,
        f"SELECT e.pilot_id, min(e.started_at) AS started_at, count(*) AS assigned "
        f"FROM {SCHEMA}.episodes e WHERE e.pilot_id IS NOT NULL AND {where} "
        "GROUP BY 1 ORDER BY 2",
        params,
    )


async def plan_of(session: AsyncSession, pilot_id: str) -> tuple[str, PilotPlan] | None:
    """(clinic, plan) of a pilot whose plan has been seen."""
    row = (
        await session.execute(
            text(f"SELECT clinic_id, plan FROM {SCHEMA}.pilot_plans WHERE pilot_id = :p"),
            {"p": pilot_id},
        )
    ).first()
    return (row[0], PilotPlan.model_validate(row[1])) if row else None


async def all_plans(session: AsyncSession) -> list[tuple[str, str, PilotPlan]]:
    """(clinic, pilot, plan) of every pilot whose plan has been seen."""
    rows = await session.execute(
        text(f"SELECT clinic_id, pilot_id, plan FROM {SCHEMA}.pilot_plans ORDER BY 1, 2")
    )
    return [(r[0], r[1], PilotPlan.model_validate(r[2])) for r in rows]


async def pilot_arms(session: AsyncSession, f: Filters) -> list[dict[str, Any]]:
    """Both arms of one pilot (``f.pilot_id``), counted from assignment (intent to treat)."""
    where, params = _where(f, "e", "e.started_at")
    return await _rows(
        session,
        f"""
        SELECT coalesce(e.arm, 'outreach') AS arm,
               min(e.started_at) AS first_assigned_at,
               count(*) AS assigned,
               count(e.first_sent_at) AS messaged,
               count(e.first_delivered_at) AS reached,
               count(e.clicked_at) AS clicked,
               count(*) FILTER (WHERE e.replied) AS replied,
               count(*) FILTER (WHERE e.opted_out) AS opted_out,
               count(*) FILTER (WHERE e.assigned_bookings > 0) AS rebooked,
               count(*) FILTER (WHERE e.assigned_completed_visits > 0) AS completed,
               coalesce(sum(e.assigned_completed_visits), 0) AS completed_visits,
               coalesce(sum(e.assigned_revenue_cents), 0) AS revenue_cents,
               {_pct(0.5, "e.assigned_booked_at - e.started_at")} AS hours_to_booking_median,
               {_pct(0.9, "e.assigned_booked_at - e.started_at")} AS hours_to_booking_p90
        FROM {SCHEMA}.episodes e WHERE e.started_at IS NOT NULL AND {where}
        GROUP BY 1 ORDER BY 1
        """,
        params,
    )


PREVIOUS_COLUMNS = (
    "segment, service_line, provider_id, location_id, urgency, due_at, cancellation_reason, "
    "cancelled_by, eligible_at, first_sent_at, clicked_at, assigned_bookings, "
    "assigned_completed_visits, assigned_revenue_cents"
)


async def previous_candidates(
    session: AsyncSession, clinic_id: str, plan: PilotPlan, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The segment's episodes eligible in [since, until) that no pilot took: the cohort
    screens them (``domain.pilots.previous_weeks``)."""
    return await _rows(
        session,
        f"SELECT {PREVIOUS_COLUMNS} FROM {SCHEMA}.episodes WHERE clinic_id = :c "
        "AND segment = :s AND eligible_at >= :since AND eligible_at < :until "
        "AND pilot_id IS NULL",
        {"c": clinic_id, "s": plan.segment.value, "since": since, "until": until},
    )


def _week(moment: str) -> str:
    since = f"{moment} - CAST(:pilot_start AS timestamptz)"
    return f"floor(extract(epoch FROM {since}) / 604800)::int + 1"


async def pilot_weeks(
    session: AsyncSession, f: Filters, pilot_start: datetime
) -> list[dict[str, Any]]:
    """Week by week of one pilot: assignments, messages, bookings, replies and opt-outs."""
    where, params = _where(f, "e", "e.started_at")
    params["pilot_start"] = pilot_start
    episode_rows = await _rows(
        session,
        f"""
        SELECT w.week, coalesce(e.arm, 'outreach') AS arm,
               count(*) FILTER (WHERE w.what = 'assigned') AS assigned,
               count(*) FILTER (WHERE w.what = 'messaged') AS messaged,
               count(*) FILTER (WHERE w.what = 'clicked') AS clicked,
               count(*) FILTER (WHERE w.what = 'rebooked') AS rebooked
        FROM {SCHEMA}.episodes e
        CROSS JOIN LATERAL (VALUES
            ('assigned', {_week("e.started_at")}),
            ('messaged', {_week("e.first_sent_at")}),
            ('clicked', {_week("e.clicked_at")}),
            ('rebooked', {_week("e.assigned_booked_at")})) AS w(what, week)
        WHERE e.started_at IS NOT NULL AND w.week IS NOT NULL AND {where}
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        params,
    )
    reply_rows = await _rows(
        session,
        f"SELECT {_week('r.at')} AS week, coalesce(e.arm, 'outreach') AS arm, {_reply_figures()} "
        f"FROM {SCHEMA}.replies r JOIN {SCHEMA}.episodes e ON e.patient_key = r.patient_key "
        f"AND e.eligibility_id = r.eligibility_id WHERE {where} GROUP BY 1, 2",
        params,
    )
    opt_rows = await _rows(
        session,
        f"SELECT {_week('o.at')} AS week, coalesce(e.arm, 'outreach') AS arm, "
        f"count(*) AS opt_outs FROM {SCHEMA}.opt_outs o JOIN {SCHEMA}.episodes e "
        "ON e.patient_key = o.patient_key AND e.eligibility_id = o.eligibility_id "
        f"WHERE {where} GROUP BY 1, 2",
        params,
    )
    merged: dict[tuple[int, str], dict[str, Any]] = {}
    empty = dict.fromkeys(
        ["assigned", "messaged", "clicked", "rebooked", "opt_outs", *REPLY_FIGURES], 0
    )
    for source in (episode_rows, reply_rows, opt_rows):
        for row in source:
            key = (int(row["week"]), row["arm"])
            merged.setdefault(key, {"week": key[0], "arm": key[1], **empty}).update(
                {k: v for k, v in row.items() if k not in ("week", "arm")}
            )
    return [merged[k] for k in sorted(merged)]


_OBJECTIONS = ", ".join(f"'{i}'" for i in sorted(OBJECTION_INTENTS))


async def objections(session: AsyncSession, f: Filters, examples: int) -> list[dict[str, Any]]:
    """The pilot's objections grouped by barrier (``intent:<intent>`` when the reply named
    none), each with a count and up to ``examples`` references to replies: the patient's key
    and the reply's message id, which the messenger's conversation API resolves to the words.
    The words themselves never leave the messenger through here."""
    where, params = _where(f, "r", "r.at")
    params["n"] = examples
    rows = await _rows(
        session,
        f"""
        SELECT grp, replies, patient_key, reply_id, at, intent FROM (
            SELECT coalesce(r.barrier, 'intent:' || r.intent) AS grp, r.patient_key,
                   r.reply_id, r.at, r.intent,
                   count(*) OVER (PARTITION BY coalesce(r.barrier, 'intent:' || r.intent))
                       AS replies,
                   row_number() OVER (PARTITION BY coalesce(r.barrier, 'intent:' || r.intent)
                                      ORDER BY r.at, r.reply_id) AS rank
            FROM {SCHEMA}.replies r JOIN {SCHEMA}.episodes e
              ON e.patient_key = r.patient_key AND e.eligibility_id = r.eligibility_id
            WHERE (r.barrier IS NOT NULL OR r.intent IN ({_OBJECTIONS})) AND {where}
        ) t WHERE rank <= :n ORDER BY replies DESC, grp, at, reply_id
        """,
        params,
    )
    grouped: dict[str, dict[str, Any]] = {}
    for r in rows:
        named = not r["grp"].startswith("intent:")
        group = grouped.setdefault(
            r["grp"],
            {
                "barrier": r["grp"] if named else None,
                "intent": None if named else r["grp"].removeprefix("intent:"),
                "replies": r["replies"],
                "examples": [],
            },
        )
        group["examples"].append(
            {
                "patient_key": r["patient_key"],
                "reply_id": r["reply_id"],
                "at": r["at"],
                "intent": r["intent"],
            }
        )
    return list(grouped.values())
