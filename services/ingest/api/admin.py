"""Admin routes: integration API keys (create, list, revoke) and replay of kept raw messages.

All clinic-scoped: an admin acts only on the clinics in the token's scope. A key that does not
exist and a key of another clinic get the same 404, so ids cannot be probed across clinics.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from services.ingest import keys, replay, repository
from services.ingest.api.common import AUTH_RESPONSES, Problems, ingest_of, runtime_of
from shared.auth import Admin, require_clinic
from shared.ids import ClinicId

router = APIRouter(prefix="/admin", tags=["admin"])
_RESPONSES = AUTH_RESPONSES | {422: {"model": Problems, "description": "invalid request"}}


class NewKey(BaseModel):
    clinic_id: ClinicId
    label: Annotated[str, StringConstraints(max_length=200)] = ""


class IssuedKey(BaseModel):
    key_id: str
    clinic_id: str
    label: str
    created_at: datetime
    api_key: str = Field(description="the key itself: shown once, never stored, never shown again")


class KeyInfo(BaseModel):
    key_id: str
    clinic_id: str
    label: str
    created_at: datetime
    created_by: str | None = None
    revoked_at: datetime | None = None
    active: bool


class Revoked(BaseModel):
    key_id: str
    revoked_at: datetime


class ReplayRequest(BaseModel):
    clinic_id: ClinicId
    received_from: AwareDatetime | None = None
    received_until: AwareDatetime | None = None
    include_refused: bool = True
    limit: int = Field(default=1000, ge=1, le=10_000)


class ReplayReport(BaseModel):
    messages: int
    events_published: int
    events_unchanged: int
    accepted_now: int
    still_refused: int
    refused_now: int
    not_replayable: int


@router.post("/api-keys", status_code=201, response_model=IssuedKey, responses=_RESPONSES)
async def create_key(request: Request, principal: Admin, body: NewKey) -> Any:
    """Create a key for a clinic. Rotate by creating a new key, switching the integration over,
    then revoking the old one: both work in between."""
    require_clinic(principal, body.clinic_id)
    async with runtime_of(request).sessions() as session, session.begin():
        issued = await keys.issue_key(session, body.clinic_id, body.label, principal.subject)
    return IssuedKey(**issued.__dict__)


@router.get("/api-keys", response_model=list[KeyInfo], responses=_RESPONSES)
async def list_keys(
    request: Request, principal: Admin, clinic_id: Annotated[ClinicId, Query()]
) -> Any:
    """The clinic's keys, active and revoked, without any secret."""
    require_clinic(principal, clinic_id)
    async with runtime_of(request).sessions() as session:
        rows = await repository.list_api_keys(session, clinic_id)
    return [KeyInfo(**row, active=row["revoked_at"] is None) for row in rows]


@router.post(
    "/api-keys/{key_id}/revoke",
    response_model=Revoked,
    responses=_RESPONSES | {404: {"description": "no such key in your clinics"}},
)
async def revoke_key(
    request: Request,
    principal: Admin,
    key_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")],
) -> Any:
    """Revoke a key at once (MLLP senders using it are refused within the key cache's TTL)."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session, session.begin():
        clinic = await repository.key_clinic(session, key_id)
        if clinic is None or not principal.may_access(clinic):
            raise HTTPException(404, "no such key in your clinics")
        revoked_at = await repository.revoke_api_key(session, key_id)
    ingest_of(request).keys.forget(key_id)
    assert revoked_at is not None
    return Revoked(key_id=key_id, revoked_at=revoked_at)


@router.post("/replay", response_model=ReplayReport, responses=_RESPONSES)
async def replay_messages(request: Request, principal: Admin, body: ReplayRequest) -> Any:
    """Map the clinic's kept raw messages again with the current mapping (after a fix).

    Unchanged events keep their ids and are not sent again; changed or new ones are published;
    refused messages that now map are accepted. Oldest first, at most ``limit`` messages.
    """
    require_clinic(principal, body.clinic_id)
    report = await replay.replay(
        runtime_of(request),
        ingest_of(request),
        body.clinic_id,
        since=body.received_from,
        until=body.received_until,
        include_refused=body.include_refused,
        limit=body.limit,
    )
    return ReplayReport(**report.as_dict())
