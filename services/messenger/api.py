"""Messenger ops API (skeleton): read what the sandbox provider "sent" to a patient."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from services.messenger import repository
from shared.auth import CurrentPrincipal, require_clinic
from shared.runtime import Runtime

router = APIRouter(tags=["sandbox"])


@router.get("/sandbox/messages", summary="The sandbox inbox of one patient")
async def sandbox_messages(
    request: Request,
    principal: CurrentPrincipal,
    patient_key: str = Query(min_length=3, max_length=200, pattern=r"^[^:]+:.+$"),
) -> dict[str, Any]:
    require_clinic(principal, patient_key.split(":", 1)[0])
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        messages = await repository.sandbox_messages(session, patient_key)
    return {"patient_key": patient_key, "messages": messages}
