"""EHR connections per clinic (admins), the booking tasks staff work from, the chart queue.

A connection names environment variables for its secrets, inside the clinic's own namespace
(``REVISIT_EHR_<CLINIC>_…``); responses show those names and whether each is set in the
messenger's environment, never a value.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from services.messenger.ehr import store
from services.messenger.ehr.check import run_check
from services.messenger.ehr.domain.capabilities import Capabilities
from services.messenger.ehr.domain.connection import ConnectionSettings, secret_problems
from services.messenger.ehr.routing import ClinicScheduling
from shared.auth import Admin, Operator, require_clinic
from shared.events.common import ServiceLine
from shared.ids import ClinicId
from shared.runtime import Runtime

router = APIRouter(prefix="/ehr", tags=["EHR connections"])


class ConnectionView(BaseModel):
    clinic_id: str
    settings: ConnectionSettings
    secrets_set: dict[str, bool]  # each named variable: present in the messenger's environment
    capabilities: Capabilities | None
    capabilities_checked_at: datetime | None
    updated_at: datetime
    updated_by: str


class CheckLineView(BaseModel):
    step: str
    status: Literal["PASS", "FAIL", "SKIP"]
    detail: str


class CheckReport(BaseModel):
    clinic_id: str
    ok: bool
    lines: list[CheckLineView]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _forget(runtime: Runtime, clinic_id: str) -> None:
    scheduling = getattr(runtime.extras.get("messenger"), "scheduling", None)
    if isinstance(scheduling, ClinicScheduling):
        scheduling.forget(clinic_id)


async def _view(runtime: Runtime, clinic_id: str) -> ConnectionView:
    async with runtime.sessions() as session:
        found = await store.connection(session, clinic_id)
    if found is None:
        raise HTTPException(404, "this clinic has no EHR connection")
    settings = found.connection.settings
    return ConnectionView(
        clinic_id=clinic_id,
        settings=settings,
        secrets_set={n: bool(os.environ.get(n, "").strip()) for n in settings.auth.secret_names()},
        capabilities=found.connection.capabilities,
        capabilities_checked_at=found.capabilities_checked_at,
        updated_at=found.updated_at,
        updated_by=found.updated_by,
    )


@router.get("/connections/{clinic_id}", response_model=ConnectionView)
async def get_connection(request: Request, principal: Admin, clinic_id: ClinicId) -> Any:
    require_clinic(principal, clinic_id)
    return await _view(_runtime(request), clinic_id)


@router.put(
    "/connections/{clinic_id}",
    response_model=ConnectionView,
    responses={
        422: {
            "description": "a setting is invalid, or a secret variable is outside "
            "the clinic's REVISIT_EHR_<CLINIC>_ namespace"
        }
    },
)
async def put_connection(
    request: Request, principal: Admin, clinic_id: ClinicId, body: ConnectionSettings
) -> Any:
    """Create or replace the clinic's connection. Capabilities are read again from the server."""
    require_clinic(principal, clinic_id)
    problems = secret_problems(clinic_id, body.auth)
    if problems:
        raise HTTPException(422, [{"loc": p.split(":")[0], "msg": p} for p in problems])
    runtime = _runtime(request)
    async with runtime.sessions() as session, session.begin():
        await store.save_connection(session, clinic_id, body, f"staff:{principal.subject}")
    _forget(runtime, clinic_id)
    return await _view(runtime, clinic_id)


@router.delete("/connections/{clinic_id}", status_code=204)
async def delete_connection(request: Request, principal: Admin, clinic_id: ClinicId) -> None:
    """The clinic books through the deployment's default scheduling again."""
    require_clinic(principal, clinic_id)
    runtime = _runtime(request)
    async with runtime.sessions() as session, session.begin():
        if not await store.delete_connection(session, clinic_id):
            raise HTTPException(404, "this clinic has no EHR connection")
    _forget(runtime, clinic_id)


@router.post("/connections/{clinic_id}/check", response_model=CheckReport)
async def check_connection(
    request: Request,
    principal: Admin,
    clinic_id: ClinicId,
    service_line: ServiceLine | None = None,
) -> Any:
    """Capability, auth, slot search and a dry-run booking, each PASS, FAIL or SKIP."""
    require_clinic(principal, clinic_id)
    runtime = _runtime(request)
    async with runtime.sessions() as session:
        found = await store.connection(session, clinic_id)
    if found is None:
        raise HTTPException(404, "this clinic has no EHR connection")
    lines = await run_check(
        found.connection,
        runtime.sessions,
        os.environ,
        runtime.clock.now,
        service_line=service_line,
    )
    _forget(runtime, clinic_id)
    return CheckReport(
        clinic_id=clinic_id,
        ok=all(line.status != "FAIL" for line in lines),
        lines=[CheckLineView(**line.__dict__) for line in lines],
    )


@router.get("/booking-tasks")
async def booking_tasks(
    request: Request,
    principal: Operator,
    clinic_id: Annotated[str, Query(min_length=1, max_length=100)],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Times patients chose that a person books by hand (or a patient to match first), with
    the EHR ids needed; ``open`` while the case is open."""
    require_clinic(principal, clinic_id)
    async with _runtime(request).sessions() as session:
        tasks = await store.booking_tasks(session, clinic_id, limit)
    return {"clinic_id": clinic_id, "tasks": tasks}
