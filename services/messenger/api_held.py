"""Held steps for staff: which patients' steps wait for a contact card or a consent, until
when, and which were blocked after the wait, with the reason (patient keys only, no PHI)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request

from services.messenger import held
from shared.auth import CurrentPrincipal, require_clinic
from shared.runtime import Runtime

router = APIRouter()


@router.get("/held-steps", tags=["practice"])
async def held_steps(
    request: Request,
    principal: CurrentPrincipal,
    status: Literal["waiting", "blocked"] = "waiting",
    clinic_id: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Steps that reached the messenger before the patient's contact card (or, for marketing,
    any consent record): ``waiting`` ones go as soon as it arrives; ``blocked`` ones waited the
    whole ``REVISIT_MESSENGER_PREREQUISITE_WAIT_SECONDS`` in vain (``why`` says what was
    missing), and their sequences were stopped."""
    if clinic_id is not None:
        require_clinic(principal, clinic_id)
    elif principal.clinics is not None:
        raise HTTPException(403, "name a clinic_id in your scope")
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        steps = await held.listing(session, clinic_id, status, limit)
    return {"status": status, "steps": steps}
