"""Rotations, overrides and "who is on call now".

Reading needs any role in the clinic; overrides (swaps, cover) need ``operator``; creating or
changing a rotation needs ``admin``. Every change is in the clinic's audit trail.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from services.escalation.api.deps import EscalationDep
from services.escalation.domain import AuditEntry, Member, Override, Rotation, escalation_chain
from services.escalation.domain.rotations import next_handoffs, on_call
from services.escalation.live_routes import refuse_sandbox_routes
from services.escalation.repository import audit, notifiers, setup
from services.escalation.workflow import Escalation
from shared.auth import Admin, CurrentPrincipal, Operator, Principal, require_clinic
from shared.events.common import Id, TimeZoneName
from shared.ids import ClinicId

router = APIRouter(tags=["rotations"])
RotationId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^\S+$")]
Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class MemberBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    responder_id: Id
    email: Email | None = None  # where the e-mail notifier reaches this responder


class RotationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    time_zone: TimeZoneName
    handoff_time: time = time(8, 0)
    shift_days: int = Field(default=7, ge=1, le=28)
    anchor_date: date = date(2024, 1, 1)  # the day the first member's first shift starts
    members: list[MemberBody] = Field(default_factory=list, max_length=50)
    fallback_rotation_id: Id | None = None
    notifier_ids: list[Id] = Field(default_factory=list, max_length=5)

    @model_validator(mode="after")
    def _distinct(self) -> RotationBody:
        ids = [m.responder_id for m in self.members]
        if len(ids) != len(set(ids)):
            raise ValueError("members: a responder may appear once")
        return self


class OverrideBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    responder_id: Id
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> OverrideBody:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


def _view(rotation: Rotation, at: datetime) -> dict[str, Any]:
    shift = on_call(rotation, at)
    return {
        "rotation_id": rotation.rotation_id,
        "name": rotation.name,
        "time_zone": rotation.time_zone,
        "handoff_time": rotation.handoff_time.isoformat(timespec="minutes"),
        "shift_days": rotation.shift_days,
        "anchor_date": rotation.anchor_date,
        "members": [{"responder_id": m.responder_id, "email": m.email} for m in rotation.members],
        "fallback_rotation_id": rotation.fallback_rotation_id,
        "notifier_ids": list(rotation.notifier_ids),
        "overrides": [asdict(o) for o in rotation.overrides],
        "on_call": asdict(shift) if shift else None,
    }


async def _rotations(
    esc: Escalation, principal: Principal, clinic_id: str, at: datetime
) -> dict[str, Rotation]:
    require_clinic(principal, clinic_id)
    async with esc.runtime.sessions() as session, session.begin():
        await setup.ensure_clinic(
            session, clinic_id, esc.runtime.settings.revisit_default_time_zone
        )
        return await setup.load_rotations(session, clinic_id, overrides_after=at)


@router.get("/clinics/{clinic_id}/rotations", summary="A clinic's rotations and who is on call")
async def list_rotations(
    clinic_id: ClinicId, esc: EscalationDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    now = esc.clock.now()
    found = await _rotations(esc, principal, clinic_id, now)
    return {"clinic_id": clinic_id, "rotations": [_view(r, now) for r in found.values()]}


@router.get("/clinics/{clinic_id}/on-call", summary="Who is on call in every rotation")
async def clinic_on_call(
    clinic_id: ClinicId,
    esc: EscalationDep,
    principal: CurrentPrincipal,
    at: Annotated[AwareDatetime | None, Query()] = None,
) -> dict[str, Any]:
    moment = at or esc.clock.now()
    found = await _rotations(esc, principal, clinic_id, moment)
    on_duty = {rid: on_call(r, moment) for rid, r in found.items()}
    return {
        "clinic_id": clinic_id,
        "at": moment,
        "on_call": {rid: (asdict(s) if s else None) for rid, s in on_duty.items()},
    }


@router.get("/clinics/{clinic_id}/rotations/{rotation_id}/on-call", summary="Who is on call now")
async def rotation_on_call(
    clinic_id: ClinicId,
    rotation_id: RotationId,
    esc: EscalationDep,
    principal: CurrentPrincipal,
    at: Annotated[AwareDatetime | None, Query()] = None,
) -> dict[str, Any]:
    moment = at or esc.clock.now()
    found = await _rotations(esc, principal, clinic_id, moment)
    rotation = found.get(rotation_id)
    if rotation is None:
        raise HTTPException(404, "no such rotation in this clinic")
    shift = on_call(rotation, moment)
    return {
        "rotation_id": rotation_id,
        "at": moment,
        "on_call": asdict(shift) if shift else None,
        "escalation_chain": [asdict(t) for t in escalation_chain(found, rotation_id, moment)],
        "upcoming": [asdict(s) for s in next_handoffs(rotation, moment, 4)],
    }


@router.put("/clinics/{clinic_id}/rotations/{rotation_id}", summary="Create or replace a rotation")
async def put_rotation(
    clinic_id: ClinicId,
    rotation_id: RotationId,
    body: RotationBody,
    esc: EscalationDep,
    principal: Admin,
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    rotation = Rotation(
        rotation_id=rotation_id,
        name=body.name,
        time_zone=body.time_zone,
        handoff_time=body.handoff_time,
        shift_days=body.shift_days,
        anchor_date=body.anchor_date,
        members=tuple(Member(m.responder_id, m.email) for m in body.members),
        fallback_rotation_id=body.fallback_rotation_id,
        notifier_ids=tuple(body.notifier_ids),
    )
    now = esc.clock.now()
    async with esc.runtime.sessions() as session, session.begin():
        await setup.ensure_clinic(
            session, clinic_id, esc.runtime.settings.revisit_default_time_zone
        )
        existing = await setup.load_rotations(session, clinic_id, overrides_after=now)
        fallback = body.fallback_rotation_id
        if fallback is not None and (fallback == rotation_id or fallback not in existing):
            raise HTTPException(422, "fallback_rotation_id: must be another rotation of the clinic")
        known = {n.notifier_id for n in await notifiers.load(session, clinic_id, body.notifier_ids)}
        if missing := [n for n in body.notifier_ids if n not in known]:
            raise HTTPException(422, f"notifier_ids: not configured: {', '.join(missing)}")
        await setup.upsert_rotation(session, clinic_id, rotation)
        await refuse_sandbox_routes(esc.runtime, session, clinic_id)
        detail = {"rotation_id": rotation_id, "members": len(rotation.members)}
        await audit.add(
            session, clinic_id, None, now, [AuditEntry("rotation_saved", principal.subject, detail)]
        )
        saved = (await setup.load_rotations(session, clinic_id, overrides_after=now))[rotation_id]
    return _view(saved, now)


@router.post(
    "/clinics/{clinic_id}/rotations/{rotation_id}/overrides",
    status_code=201,
    summary="Put someone on call for an interval (a swap or cover)",
)
async def add_override(
    clinic_id: ClinicId,
    rotation_id: RotationId,
    body: OverrideBody,
    esc: EscalationDep,
    principal: Operator,
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    override = Override(uuid.uuid4().hex, body.responder_id, body.starts_at, body.ends_at)
    now = esc.clock.now()
    async with esc.runtime.sessions() as session, session.begin():
        found = await setup.load_rotations(session, clinic_id, overrides_after=now)
        if rotation_id not in found:
            raise HTTPException(404, "no such rotation in this clinic")
        await setup.add_override(session, clinic_id, rotation_id, override, principal.subject)
        detail = {
            "rotation_id": rotation_id,
            "override_id": override.override_id,
            "responder_id": override.responder_id,
        }
        await audit.add(
            session, clinic_id, None, now, [AuditEntry("override_added", principal.subject, detail)]
        )
    return {"rotation_id": rotation_id, **asdict(override)}


@router.delete(
    "/clinics/{clinic_id}/rotations/{rotation_id}/overrides/{override_id}",
    status_code=204,
    summary="Remove an override",
)
async def delete_override(
    clinic_id: ClinicId,
    rotation_id: RotationId,
    override_id: Annotated[str, Path(min_length=1, max_length=64)],
    esc: EscalationDep,
    principal: Operator,
) -> None:
    require_clinic(principal, clinic_id)
    async with esc.runtime.sessions() as session, session.begin():
        if not await setup.delete_override(session, clinic_id, rotation_id, override_id):
            raise HTTPException(404, "no such override")
        detail = {"rotation_id": rotation_id, "override_id": override_id}
        entry = AuditEntry("override_removed", principal.subject, detail)
        await audit.add(session, clinic_id, None, esc.clock.now(), [entry])
