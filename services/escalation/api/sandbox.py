"""What the sandbox pager "sent": the pages a responder would have received."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.escalation.api.deps import EscalationDep
from services.escalation.repository import pages
from shared.auth import CurrentPrincipal, require_clinic

router = APIRouter(tags=["sandbox"])


@router.get("/sandbox/pages", summary="Pages recorded by the sandbox notifier")
async def sandbox_pages(
    esc: EscalationDep,
    principal: CurrentPrincipal,
    clinic_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    escalation_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    scope = principal.clinics
    if clinic_id is not None:
        require_clinic(principal, clinic_id)
        scope = frozenset({clinic_id})
    async with esc.runtime.sessions() as session:
        found = await pages.sandbox(session, scope, escalation_id=escalation_id, limit=limit)
    return {"pages": found}
