"""Pilots and their arms, as the sequencer lists them today: one page, one adapter, kept thin
while pilots are reshaped (phases, cohorts, comparisons)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.console.api.deps import ConsoleDep, SignedIn, clinic_for, render
from services.console.domain.words import SEGMENTS, say

router = APIRouter()


@router.get("/pilots", response_class=HTMLResponse)
async def pilots_page(
    request: Request,
    console: ConsoleDep,
    session: SignedIn,
    clinic: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    clinic_id = clinic_for(console, session.staff, clinic)
    pilots = await console.apis.pilots.pilots(session.token, clinic_id)
    return render(
        request,
        console,
        "pilots.html",
        session,
        clinic=clinic_id,
        pilots=pilots,
        segment_words=lambda code: say(SEGMENTS, code),
    )
