"""Escalation ops API (skeleton): the open queue, most severe and oldest first."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.escalation import repository
from shared.auth import CurrentPrincipal
from shared.runtime import Runtime

router = APIRouter(tags=["cases"])


@router.get("/cases", summary="Open cases the caller's clinics may see")
async def queue(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        cases = await repository.open_cases(session, principal.clinics)
    return {"cases": cases}
