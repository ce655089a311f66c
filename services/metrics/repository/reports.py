"""Aggregations behind the reports API: every figure by clinic, segment, workflow, pilot, week.

Group-by dimensions and filters come from fixed whitelists (``DIMENSIONS``); every value is a
bound parameter. A week is the ISO week (Monday, UTC) of the row's own moment: eligibility for
episodes, the reply, the opt-out or the raising of an escalation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Text

from services.metrics.domain.pilots import OBJECTION_INTENTS
from services.metrics.repository import SCHEMA, numbers
from shared.events.messages import Barrier, ReplyIntent

# dimension -> SQL over the episode alias ``e`` ("{t}" is the row's own moment).
DIMENSIONS: dict[str, str] = {
    "clinic": "{c}.clinic_id",
    "segment": "coalesce(e.segment, 'none')",
    "kind": "coalesce(e.kind, 'none')",
    "service_line": "coalesce(e.service_line, 'none')",
    "workflow": "coalesce(e.workflow_key, 'none')",
    "pilot": "coalesce(e.pilot_id, 'none')",
    "arm": "coalesce(e.arm, 'none')",
    "week": "(date_trunc('week', {t} AT TIME ZONE 'UTC'))::date",
    # escalations only
    "severity": "coalesce({c}.severity, 'unknown')",
    "case_type": "coalesce({c}.case_type, 'unknown')",
}
DIMENSION_COLUMNS = {"clinic": "clinic_id", "workflow": "workflow_key", "pilot": "pilot_id"}


@dataclass(frozen=True)
class Filters:
    clinics: Sequence[str] | None  # None: every clinic
    start: date | None = None  # inclusive
    end: date | None = None  # inclusive
    segment: str | None = None
    workflow: str | None = None
    pilot_id: str | None = None


def _where(f: Filters, alias: str, moment: str) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = ["TRUE"]
    params: dict[str, Any] = {}
    if f.clinics is not None:
        clauses.append(f"{alias}.clinic_id = ANY(:clinics)")
        params["clinics"] = list(f.clinics)
    if f.start is not None:
        clauses.append(f"{moment} >= CAST(:start AS date)")
        params["start"] = f.start
    if f.end is not None:
        clauses.append(f"{moment} < CAST(:end AS date) + 1")
        params["end"] = f.end
    for column, value in (
        ("segment", f.segment),
        ("workflow_key", f.workflow),
        ("pilot_id", f.pilot_id),
    ):
        if value is not None:
            clauses.append(f"e.{column} = :{column}")
            params[column] = value
    return " AND ".join(clauses), params


def _group(dims: Sequence[str], alias: str, moment: str) -> tuple[str, str]:
    exprs = [
        f"{DIMENSIONS[d].format(c=alias, t=moment)} AS {DIMENSION_COLUMNS.get(d, d)}" for d in dims
    ]
    select = ", ".join(exprs) + ", " if exprs else ""
    group = "GROUP BY " + ", ".join(str(i + 1) for i in range(len(dims))) if dims else ""
    return select, group


def _order(dims: Sequence[str]) -> str:
    return "ORDER BY " + ", ".join(str(i + 1) for i in range(len(dims))) if dims else ""


async def _rows(session: AsyncSession, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    stmt = text(sql)
    if "clinics" in params:
        stmt = stmt.bindparams(bindparam("clinics", type_=ARRAY(Text())))
    return [numbers(r._mapping) for r in await session.execute(stmt, params)]


def _pct(q: float, expr: str, hours: bool = True) -> str:
    scale = " / 3600.0" if hours else " / 60.0"
    return f"percentile_cont({q}) WITHIN GROUP (ORDER BY extract(epoch FROM {expr}){scale})"


EPISODE_FIGURES = f"""
    count(*) AS eligible,
    count(DISTINCT e.patient_key) AS patients,
    count(e.sequence_id) AS sequences_started,
    count(e.first_sent_at) AS messaged,
    count(e.first_delivered_at) AS reached,
    count(e.clicked_at) AS clicked,
    count(*) FILTER (WHERE e.replied) AS replied,
    count(*) FILTER (WHERE e.opted_out) AS opted_out,
    count(*) FILTER (WHERE e.bookings > 0) AS rebooked,
    count(*) FILTER (WHERE e.completed_visits > 0) AS completed,
    coalesce(sum(e.completed_visits), 0) AS completed_visits,
    coalesce(sum(e.revenue_cents), 0) AS revenue_cents,
    {_pct(0.5, "e.booked_at - e.first_sent_at")} AS hours_to_booking_median,
    {_pct(0.9, "e.booked_at - e.first_sent_at")} AS hours_to_booking_p90,
    count(*) FILTER (WHERE e.segment = 'cancelled_not_rescheduled') AS cancellations,
    count(*) FILTER (WHERE e.segment = 'cancelled_not_rescheduled'
                     AND e.completed_visits > 0) AS cancellations_recovered
"""


async def funnel(session: AsyncSession, dims: Sequence[str], f: Filters) -> list[dict[str, Any]]:
    where, params = _where(f, "e", "e.eligible_at")
    select, group = _group(dims, "e", "e.eligible_at")
    sql = f"SELECT {select}{EPISODE_FIGURES} FROM {SCHEMA}.episodes e WHERE {where} {group}"
    sql += " " + _order(dims)
    return await _rows(session, sql, params)


_OBJECTIONS = ", ".join(f"'{i}'" for i in sorted(OBJECTION_INTENTS))
# reply figure -> its filter over the reply alias ``r``
REPLY_FIGURES: dict[str, str] = {
    "replies": "TRUE",
    "objections": f"r.intent IN ({_OBJECTIONS}) OR r.barrier IS NOT NULL",
    **{f"intent_{i.value}": f"r.intent = '{i.value}'" for i in ReplyIntent},
    **{f"barrier_{b.value}": f"r.barrier = '{b.value}'" for b in Barrier},
}


def _reply_figures() -> str:
    return ", ".join(
        f"count(*) FILTER (WHERE {cond}) AS {name}" for name, cond in REPLY_FIGURES.items()
    )


_JOIN = (
    "LEFT JOIN {s}.episodes e "
    "ON e.patient_key = {a}.patient_key AND e.eligibility_id = {a}.eligibility_id"
)


async def barriers(session: AsyncSession, dims: Sequence[str], f: Filters) -> list[dict[str, Any]]:
    """Replies by intent and barrier, objections and opt-outs, merged on the same groups."""
    where, params = _where(f, "r", "r.at")
    select, group = _group(dims, "r", "r.at")
    join = _JOIN.format(s=SCHEMA, a="r")
    replies = await _rows(
        session,
        f"SELECT {select}{_reply_figures()} FROM {SCHEMA}.replies r {join} WHERE {where} {group}",
        params,
    )
    where, params = _where(f, "o", "o.at")
    select, group = _group(dims, "o", "o.at")
    join = _JOIN.format(s=SCHEMA, a="o")
    opt_outs = await _rows(
        session,
        f"SELECT {select}count(*) AS opt_outs FROM {SCHEMA}.opt_outs o {join} "
        f"WHERE {where} {group}",
        params,
    )
    keys = [DIMENSION_COLUMNS.get(d, d) for d in dims]
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    empty = dict.fromkeys(REPLY_FIGURES, 0)
    for row in replies:
        merged[tuple(row[k] for k in keys)] = {**row, "opt_outs": 0}
    for row in opt_outs:
        key = tuple(row[k] for k in keys)
        base = merged.get(key) or {**{k: row[k] for k in keys}, **empty}
        merged[key] = {**base, "opt_outs": row["opt_outs"]}
    rows = [r for r in merged.values() if r.get("replies") or r.get("opt_outs")]
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in keys))


async def escalations(
    session: AsyncSession, dims: Sequence[str], f: Filters
) -> list[dict[str, Any]]:
    where, params = _where(f, "x", "x.raised_at")
    select, group = _group(dims, "x", "x.raised_at")
    join = _JOIN.format(s=SCHEMA, a="x")
    sql = f"""
        SELECT {select}
               count(*) AS raised,
               count(x.acknowledged_at) AS acknowledged,
               count(x.resolved_at) AS resolved,
               {_pct(0.5, "x.acknowledged_at - x.raised_at", hours=False)} AS minutes_to_ack_median,
               {_pct(0.9, "x.acknowledged_at - x.raised_at", hours=False)} AS minutes_to_ack_p90,
               {_pct(0.5, "x.resolved_at - x.raised_at", hours=False)}
                   AS minutes_to_resolve_median,
               {_pct(0.9, "x.resolved_at - x.raised_at", hours=False)} AS minutes_to_resolve_p90
        FROM {SCHEMA}.escalations x {join} WHERE {where} {group}
        {_order(dims)}
    """
    return await _rows(session, sql, params)
