"""Aggregations behind /metrics: current totals by low-cardinality labels (no patient keys)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.repository import SCHEMA, numbers

STAGES = (
    "eligible",
    "sequence_started",
    "messaged",
    "reached",
    "clicked",
    "replied",
    "opted_out",
    "rebooked",
    "completed",
)
PILOT_STAGES = (
    "assigned",
    "messaged",
    "reached",
    "clicked",
    "replied",
    "opted_out",
    "rebooked",
    "completed",
)


async def _rows(session: AsyncSession, sql: str) -> list[dict[str, Any]]:
    return [numbers(r._mapping) for r in await session.execute(text(sql))]


async def episode_totals(session: AsyncSession) -> list[dict[str, Any]]:
    return await _rows(
        session,
        f"""
        SELECT clinic_id, segment, coalesce(workflow_key, 'none') AS workflow,
               count(*) AS eligible,
               count(sequence_id) AS sequence_started,
               count(first_sent_at) AS messaged,
               count(first_delivered_at) AS reached,
               count(clicked_at) AS clicked,
               count(*) FILTER (WHERE replied) AS replied,
               count(*) FILTER (WHERE opted_out) AS opted_out,
               count(*) FILTER (WHERE bookings > 0) AS rebooked,
               count(*) FILTER (WHERE completed_visits > 0) AS completed,
               coalesce(sum(completed_visits), 0) AS completed_visits,
               coalesce(sum(revenue_cents), 0) AS revenue_cents
        FROM {SCHEMA}.episodes GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """,
    )


async def time_to_booking(session: AsyncSession) -> list[dict[str, Any]]:
    return await _rows(
        session,
        f"""
        SELECT clinic_id, segment,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS p50,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY s) AS p90
        FROM (SELECT clinic_id, segment, extract(epoch FROM booked_at - first_sent_at) AS s
              FROM {SCHEMA}.episodes WHERE booked_at IS NOT NULL) t
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
    )


async def pilot_totals(session: AsyncSession) -> list[dict[str, Any]]:
    return await _rows(
        session,
        f"""
        SELECT clinic_id, pilot_id, coalesce(arm, 'outreach') AS arm,
               count(*) AS assigned,
               count(first_sent_at) AS messaged,
               count(first_delivered_at) AS reached,
               count(clicked_at) AS clicked,
               count(*) FILTER (WHERE replied) AS replied,
               count(*) FILTER (WHERE opted_out) AS opted_out,
               count(*) FILTER (WHERE assigned_bookings > 0) AS rebooked,
               count(*) FILTER (WHERE assigned_completed_visits > 0) AS completed,
               coalesce(sum(assigned_revenue_cents), 0) AS revenue_cents
        FROM {SCHEMA}.episodes WHERE pilot_id IS NOT NULL
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """,
    )


async def escalation_times(session: AsyncSession) -> list[dict[str, Any]]:
    return await _rows(
        session,
        f"""
        SELECT clinic_id, coalesce(severity, 'unknown') AS severity,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY
                   extract(epoch FROM acknowledged_at - raised_at)) AS ack_p50,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY
                   extract(epoch FROM acknowledged_at - raised_at)) AS ack_p90,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY
                   extract(epoch FROM resolved_at - raised_at)) AS resolve_p50,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY
                   extract(epoch FROM resolved_at - raised_at)) AS resolve_p90
        FROM {SCHEMA}.escalations GROUP BY 1, 2 ORDER BY 1, 2
        """,
    )


async def reply_totals(session: AsyncSession) -> list[dict[str, Any]]:
    """Replies by clinic, segment, pilot, intent and barrier ("none" when not known)."""
    return await _rows(
        session,
        f"""
        SELECT r.clinic_id, coalesce(e.segment, 'none') AS segment,
               coalesce(e.pilot_id, 'none') AS pilot_id, r.intent,
               coalesce(r.barrier, 'none') AS barrier, count(*) AS replies
        FROM {SCHEMA}.replies r LEFT JOIN {SCHEMA}.episodes e
          ON e.patient_key = r.patient_key AND e.eligibility_id = r.eligibility_id
        GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        """,
    )
