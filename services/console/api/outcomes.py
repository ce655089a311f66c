"""Outcomes: the funnel per segment from the metrics service, and the Grafana dashboards."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.console.api.deps import ConsoleDep, SignedIn, clinic_for, render
from services.console.domain.outcomes import COLUMNS, dashboard_links, funnel_rows

router = APIRouter()


@router.get("/outcomes", response_class=HTMLResponse)
async def outcomes_page(
    request: Request,
    console: ConsoleDep,
    session: SignedIn,
    clinic: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    clinic_id = clinic_for(console, session.staff, clinic)
    rows = await console.apis.metrics.segments(session.token, clinic_id)
    return render(
        request,
        console,
        "outcomes.html",
        session,
        clinic=clinic_id,
        columns=COLUMNS,
        rows=funnel_rows(rows),
        dashboards=dashboard_links(console.settings.grafana_url, clinic_id),
    )
