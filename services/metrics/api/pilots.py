"""Pilot versus control: both arms' figures, the difference with its 95% interval, week by week.

Both arms are counted from assignment (intent to treat): a holdout is never messaged, so the
first message cannot anchor its figures. A pilot outside the caller's clinics answers 404,
exactly like a pilot that does not exist.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from services.metrics.api.deps import ContextDep, ReportFilters
from services.metrics.api.render import Format, respond
from services.metrics.domain import pilots
from services.metrics.domain.rates import PILOT_RATES, with_rates
from services.metrics.repository import reports

router = APIRouter(prefix="/reports/pilots", tags=["reports"])
PilotId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^\S+$")]
FormatQuery = Annotated[Format | None, Query(alias="format", description="json (default) or csv")]
NOT_FOUND = "no such pilot in the clinics this credential covers"
ARMS = ("outreach", "holdout")


@router.get("", summary="Pilots with assignments in the caller's clinics")
async def list_pilots(
    request: Request, ctx: ContextDep, filters: ReportFilters, fmt: FormatQuery = None
) -> Response:
    async with ctx.sessions() as session:
        rows = await reports.pilot_ids(session, filters)
    return respond(request, fmt, "pilots", {"report": "pilots", "rows": rows}, rows)


@router.get("/{pilot_id}", summary="One pilot: arms, differences with 95% CI, weekly review")
async def pilot_report(
    request: Request,
    pilot_id: PilotId,
    ctx: ContextDep,
    filters: ReportFilters,
    fmt: FormatQuery = None,
) -> Response:
    """Figures per arm, outreach minus holdout with Newcombe's 95% interval, and the review.

    The date range filters assignments (SequenceStarted). CSV is one long table:
    ``section`` (arm, comparison, week), ``week``, ``arm``, ``figure``, ``value``, ``ci_low``,
    ``ci_high``.
    """
    f = replace(filters, pilot_id=pilot_id)
    async with ctx.sessions() as session:
        arm_rows = await reports.pilot_arms(session, f)
        if not arm_rows:
            raise HTTPException(404, NOT_FOUND)
        start = min(r["first_assigned_at"] for r in arm_rows)
        weeks = await reports.pilot_weeks(session, f, start)
    arms = {r["arm"]: with_rates(r, PILOT_RATES) for r in arm_rows}
    comparison = [
        {
            "figure": c.figure,
            "outreach": _arm(c.outreach, c.difference.p1),
            "holdout": _arm(c.holdout, c.difference.p2),
            "difference": c.difference.estimate,
            "ci_low": c.difference.low,
            "ci_high": c.difference.high,
            "method": c.difference.method,
        }
        for c in pilots.compare(arms)
    ]
    review = [{**w, "phase": pilots.phase(w["week"])} for w in weeks]
    body = {
        "report": "pilot",
        "pilot_id": pilot_id,
        "started_at": start,
        "attribution_window_days": ctx.settings.attribution_days,
        "arms": {arm: arms.get(arm) for arm in ARMS},
        "comparison": comparison,
        "weeks": review,
    }
    rows = _long(arms, comparison, review)
    return respond(request, fmt, f"pilot-{pilot_id}", body, rows, COLUMNS)


def _arm(counts: tuple[int, int], rate: float | None) -> dict[str, Any]:
    return {"successes": counts[0], "assigned": counts[1], "rate": rate}


COLUMNS = ("section", "week", "arm", "figure", "value", "ci_low", "ci_high")


def _long(
    arms: dict[str, dict[str, Any]],
    comparison: list[dict[str, Any]],
    weeks: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for arm, figures in sorted(arms.items()):
        for figure, value in figures.items():
            if figure not in ("arm", "first_assigned_at"):
                rows.append({"section": "arm", "arm": arm, "figure": figure, "value": value})
    for c in comparison:
        rows.append(
            {
                "section": "comparison",
                "arm": "outreach-holdout",
                "figure": c["figure"],
                "value": c["difference"],
                "ci_low": c["ci_low"],
                "ci_high": c["ci_high"],
            }
        )
    for w in weeks:
        for figure, value in w.items():
            if figure not in ("week", "arm"):
                rows.append(
                    {
                        "section": "week",
                        "week": w["week"],
                        "arm": w["arm"],
                        "figure": figure,
                        "value": value,
                    }
                )
    return rows
