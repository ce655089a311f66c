"""A pilot's report: both arms, the two comparisons with their 95% intervals, the weeks, and
the objections by barrier with references to example replies.

Both arms are counted from assignment (intent to treat): a holdout is never messaged, so the
first message cannot anchor its figures. The previous weeks are counted from eligibility. A
pilot outside the caller's clinics answers 404, exactly like a pilot that does not exist.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response

from services.metrics.api.deps import ContextDep, ReportFilters
from services.metrics.api.render import Format, respond
from services.metrics.domain import pilots
from services.metrics.domain.pilots import Comparison
from services.metrics.domain.rates import PILOT_RATES, with_rates
from services.metrics.repository import pilot_reports
from shared.pilots import describe

router = APIRouter(prefix="/reports/pilots", tags=["reports"])
PilotId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^\S+$")]
FormatQuery = Annotated[Format | None, Query(alias="format", description="json (default) or csv")]
NOT_FOUND = "no such pilot in the clinics this credential covers"
ARMS = ("outreach", "holdout")
PREVIOUS_LABEL = (
    "observational: the same cohort definition, eligible in the weeks before the launch, "
    "counted from eligibility over the same window"
)


@router.get("", summary="Pilots with assignments in the caller's clinics")
async def list_pilots(
    request: Request, ctx: ContextDep, filters: ReportFilters, fmt: FormatQuery = None
) -> Response:
    async with ctx.sessions() as session:
        rows = await pilot_reports.pilot_ids(session, filters)
    return respond(request, fmt, "pilots", {"report": "pilots", "rows": rows}, rows)


def _comparisons(found: list[Comparison], other: str) -> list[dict[str, Any]]:
    return [
        {
            "figure": c.figure,
            "outreach": _arm(c.outreach, c.difference.p1),
            other: _arm(c.holdout, c.difference.p2),
            "difference": c.difference.estimate,
            "ci_low": c.difference.low,
            "ci_high": c.difference.high,
            "method": c.difference.method,
        }
        for c in found
    ]


@router.get("/{pilot_id}", summary="One pilot: arms, both comparisons with 95% CI, weeks")
async def pilot_report(
    request: Request,
    pilot_id: PilotId,
    ctx: ContextDep,
    filters: ReportFilters,
    fmt: FormatQuery = None,
    examples: Annotated[int, Query(ge=0, le=20, description="example replies per barrier")] = 3,
) -> Response:
    """Figures per arm; outreach minus holdout and outreach minus the previous weeks, each
    with Newcombe's 95% interval; the weeks (from the pilot's first day, with their phase);
    objections by barrier with reply references.

    The date range filters assignments (SequenceStarted). CSV is one long table:
    ``section`` (arm, comparison, previous, week), ``week``, ``arm``, ``figure``, ``value``,
    ``ci_low``, ``ci_high``.
    """
    f = replace(filters, pilot_id=pilot_id)
    async with ctx.sessions() as session:
        arm_rows = await pilot_reports.pilot_arms(session, f)
        if not arm_rows:
            raise HTTPException(404, NOT_FOUND)
        found = await pilot_reports.plan_of(session, pilot_id)
        plan = found[1] if found else None
        start = plan.starts_at if plan else min(r["first_assigned_at"] for r in arm_rows)
        weeks = await pilot_reports.pilot_weeks(session, f, start)
        said = await pilot_reports.objections(session, f, examples)
        previous: dict[str, Any] | None = None
        counts: dict[str, int] | None = None
        if found is not None and plan is not None:
            since, until = pilots.baseline_span(plan)
            rows = await pilot_reports.previous_candidates(session, found[0], plan, since, until)
            counts = pilots.previous_weeks(plan, rows)
            previous = {"from": since, "to": until, **counts}
    arms = {r["arm"]: with_rates(r, PILOT_RATES) for r in arm_rows}
    comparison = _comparisons(pilots.compare(arms), "holdout")
    against_previous = (
        _comparisons(pilots.compare_with(arms.get("outreach"), counts), "previous")
        if counts is not None
        else []
    )
    review = [{**w, "phase": pilots.phase(w["week"])} for w in weeks]
    body = {
        "report": "pilot",
        "pilot_id": pilot_id,
        "started_at": start,
        "plan": plan.model_dump(mode="json") if plan else None,
        "cohort_words": describe(plan.segment, plan.cohort) if plan else None,
        "attribution_window_days": ctx.settings.attribution_days,
        "arms": {arm: arms.get(arm) for arm in ARMS},
        "comparison": comparison,
        "previous_process": {
            "label": PREVIOUS_LABEL,
            "cohort": previous,
            "comparison": against_previous,
        },
        "causal_claim": {"supported_by": "holdout", "why": pilots.CAUSAL},
        "weeks": review,
        "objections": said,
    }
    rows = _long(arms, comparison, against_previous, review)
    return respond(request, fmt, f"pilot-{pilot_id}", body, rows, COLUMNS)


def _arm(counts: tuple[int, int], rate: float | None) -> dict[str, Any]:
    return {"successes": counts[0], "assigned": counts[1], "rate": rate}


COLUMNS = ("section", "week", "arm", "figure", "value", "ci_low", "ci_high")


def _long(
    arms: dict[str, dict[str, Any]],
    comparison: list[dict[str, Any]],
    previous: list[dict[str, Any]],
    weeks: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for arm, figures in sorted(arms.items()):
        for figure, value in figures.items():
            if figure not in ("arm", "first_assigned_at"):
                rows.append({"section": "arm", "arm": arm, "figure": figure, "value": value})
    for section, found, against in (
        ("comparison", comparison, "outreach-holdout"),
        ("previous", previous, "outreach-previous"),
    ):
        for c in found:
            rows.append(
                {
                    "section": section,
                    "arm": against,
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
