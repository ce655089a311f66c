"""Reports: the funnel, segments, barriers and escalations, as JSON or CSV.

Every report takes ``clinic_id`` (repeatable), ``from`` / ``to`` (inclusive UTC dates),
``segment``, ``workflow``, ``pilot_id`` and ``group_by``, and answers only for the clinics the
credential covers. Any staff role may read them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from services.metrics.api.deps import ContextDep, ReportFilters, group_by
from services.metrics.api.render import Format, respond
from services.metrics.domain.rates import FUNNEL_RATES, reactivation_rate, with_rates
from services.metrics.repository import freed_slots as freed_report
from services.metrics.repository import reports
from services.metrics.repository.reports import Filters

router = APIRouter(prefix="/reports", tags=["reports"])

FormatQuery = Annotated[Format | None, Query(alias="format", description="json (default) or csv")]
EPISODE_DIMS = ("clinic", "segment", "kind", "service_line", "workflow", "pilot", "arm", "week")
EVENT_DIMS = ("clinic", "segment", "workflow", "pilot", "arm", "week")
ESCALATION_DIMS = (*EVENT_DIMS, "severity", "case_type")


def _echo(f: Filters, dims: list[str], window_days: int) -> dict[str, Any]:
    return {
        "clinic_ids": f.clinics,
        "from": f.start,
        "to": f.end,
        "segment": f.segment,
        "workflow": f.workflow,
        "pilot_id": f.pilot_id,
        "group_by": dims,
        "attribution_window_days": window_days,
    }


@router.get("/funnel", summary="The recall funnel: eligible to completed visits and revenue")
async def funnel(
    request: Request,
    ctx: ContextDep,
    filters: ReportFilters,
    dims: Annotated[list[str], group_by(EPISODE_DIMS, "clinic,segment")],
    fmt: FormatQuery = None,
) -> Response:
    """Eligibilities whose eligibility falls in the date range, grouped as asked.

    Completed visits (``completed_visits``) are the headline; see docs/metrics.md for every
    column's definition.
    """
    async with ctx.sessions() as session:
        rows = await reports.funnel(session, dims, filters)
    rows = [with_rates(r, FUNNEL_RATES) for r in rows]
    body = {"report": "funnel", "filters": _echo(filters, dims, ctx.settings.attribution_days)}
    return respond(request, fmt, "funnel", {**body, "rows": rows}, rows)


@router.get("/segments", summary="Each segment's funnel, reactivation and cancellation recovery")
async def segments(
    request: Request,
    ctx: ContextDep,
    filters: ReportFilters,
    dims: Annotated[list[str], group_by(EPISODE_DIMS, "clinic")],
    fmt: FormatQuery = None,
) -> Response:
    """One row per segment (and per the extra ``group_by`` dimensions)."""
    wanted = [d for d in dims if d not in ("segment", "kind")] + ["segment", "kind"]
    async with ctx.sessions() as session:
        rows = await reports.funnel(session, wanted, filters)
    out = []
    for r in rows:
        row = with_rates(r, FUNNEL_RATES)
        row["reactivation_rate"] = reactivation_rate(r["kind"], r["completed"], r["eligible"])
        out.append(row)
    body = {"report": "segments", "filters": _echo(filters, wanted, ctx.settings.attribution_days)}
    return respond(request, fmt, "segments", {**body, "rows": out}, out)


@router.get("/barriers", summary="Replies by intent and barrier, objections and opt-outs")
async def barriers(
    request: Request,
    ctx: ContextDep,
    filters: ReportFilters,
    dims: Annotated[list[str], group_by(EVENT_DIMS, "clinic,week")],
    fmt: FormatQuery = None,
) -> Response:
    """Replies and opt-outs whose moment falls in the date range (the weekly review)."""
    async with ctx.sessions() as session:
        rows = await reports.barriers(session, dims, filters)
    body = {"report": "barriers", "filters": _echo(filters, dims, ctx.settings.attribution_days)}
    return respond(request, fmt, "barriers", {**body, "rows": rows}, rows)


@router.get("/escalations", summary="Escalation response times (raised to acknowledged/resolved)")
async def escalations(
    request: Request,
    ctx: ContextDep,
    filters: ReportFilters,
    dims: Annotated[list[str], group_by(ESCALATION_DIMS, "clinic,severity")],
    fmt: FormatQuery = None,
) -> Response:
    """Escalations raised in the date range; times in minutes (median and p90)."""
    async with ctx.sessions() as session:
        rows = await reports.escalations(session, dims, filters)
    body = {
        "report": "escalations",
        "filters": _echo(filters, dims, ctx.settings.attribution_days),
    }
    return respond(request, fmt, "escalations", {**body, "rows": rows}, rows)


@router.get("/freed-slots", summary="Freed slots: offered, refilled, revenue kept, time to refill")
async def freed_slots(
    request: Request, ctx: ContextDep, filters: ReportFilters, fmt: FormatQuery = None
) -> Response:
    """Cancelled appointments' slots freed in the date range, by clinic and service line:
    freed, offered, patients offered, refilled (and the rate), revenue kept (cents) and the
    time from the cancellation to the refill (minutes, median and p90). ``segment``,
    ``workflow`` and ``pilot_id`` do not apply."""
    async with ctx.sessions() as session:
        rows = await freed_report.report(session, filters.clinics, filters.start, filters.end)
    echo = _echo(filters, ["clinic", "service_line"], 0)
    echo.pop("attribution_window_days")  # no attribution: a refill is the offer's own booking
    body = {"report": "freed_slots", "filters": echo}
    return respond(request, fmt, "freed_slots", {**body, "rows": rows}, rows)
