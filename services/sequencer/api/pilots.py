"""Pilots through the API: define (draft), start (week 1), launch, close.

A pilot names one segment of one clinic, cohort filters (service lines, providers, locations,
cancellation reasons, urgencies, the need's age), the launch group's size, a holdout share and
a length in days. Started, it screens that segment's new eligibilities: in week 1 it holds what
its cohort takes (nobody is messaged); from the launch decision it enrols them until the launch
group is full. Each patient's arm comes from a hash of the pilot and the patient, and is
recorded. The weekly decisions and the preview are in ``pilot_review.py``.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from services.sequencer.api.deps import RuntimeDep, base_rules
from services.sequencer.batch import Batch
from services.sequencer.domain import operators
from services.sequencer.domain import pilots as rules
from services.sequencer.domain.pilots import Pilot, PilotStatus
from services.sequencer.repository import pilots as repo
from shared.auth import Admin, CurrentPrincipal, Principal, require_clinic
from shared.events.common import Segment
from shared.events.pilot import CohortFilters
from shared.pilots import PHASE_WORDS, describe
from shared.runtime import Runtime

router = APIRouter(tags=["pilots"])
PilotId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.\-]*$")]
Share = Annotated[float, Field(ge=0.0, le=0.9)]
# Week 1 only defines: a pilot needs days after it to launch in.
Days = Annotated[int, Field(ge=8, le=365)]
BaselineDays = Annotated[int, Field(ge=7, le=365)]


class PilotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pilot_id: (
        Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.\-]*$", max_length=64)] | None
    ) = None
    clinic_id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^:\s*]+$")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    segment: Segment
    cohort: CohortFilters = CohortFilters()
    cohort_size: Annotated[int, Field(ge=1, le=1_000_000, description="the launch group's size")]
    holdout_share: Share = 0.2
    days: Days = 30
    exclusive: bool = Field(
        False, description="while it runs, the clinic messages nobody outside its launch group"
    )
    baseline_days: BaselineDays = Field(
        28, description="the previous process: the same cohort in these days before the launch"
    )


class PilotChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = None
    segment: Segment | None = None
    cohort: CohortFilters | None = None
    cohort_size: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    holdout_share: Share | None = None
    days: Days | None = None
    exclusive: bool | None = None
    baseline_days: BaselineDays | None = None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def view(p: Pilot, now: datetime | None = None) -> dict[str, Any]:
    phase = p.phase_at(now) if now is not None else None
    return {
        "pilot_id": p.pilot_id,
        "clinic_id": p.clinic_id,
        "name": p.name,
        "segment": p.segment.value,
        "cohort": p.cohort.model_dump(mode="json", exclude_none=True),
        "cohort_words": describe(p.segment, p.cohort),
        "cohort_size": p.cohort_size,
        "holdout_share": p.holdout_share,
        "days": p.days,
        "exclusive": p.exclusive,
        "baseline_days": p.baseline_days,
        "status": p.status.value,
        "starts_at": _iso(p.starts_at),
        "launched_at": _iso(p.launched_at),
        "ends_at": _iso(p.ends_at),
        "closed_at": _iso(p.closed_at),
        "enrolled": p.enrolled,
        "week": p.week_of(now) if now is not None and p.starts_at else None,
        "phase": phase.value if phase else None,
        "phase_words": PHASE_WORDS[phase] if phase else None,
    }


async def find_pilot(
    session: AsyncSession, pilot_id: str, principal: Principal, *, lock: bool = False
) -> Pilot:
    found = await repo.get(session, pilot_id, lock=lock)
    if found is None or not principal.may_access(found.clinic_id):
        raise HTTPException(404, "no such pilot in the clinics this credential covers")
    return found


@router.post("/pilots", status_code=201, summary="Define a pilot (admin); it starts as a draft")
async def create_pilot(body: PilotIn, principal: Admin, runtime: RuntimeDep) -> dict[str, Any]:
    require_clinic(principal, body.clinic_id)
    pilot = Pilot(
        pilot_id=body.pilot_id or f"pilot-{uuid.uuid4().hex[:12]}",
        clinic_id=body.clinic_id,
        name=body.name,
        segment=body.segment,
        cohort_size=body.cohort_size,
        holdout_share=body.holdout_share,
        days=body.days,
        cohort=body.cohort,
        exclusive=body.exclusive,
        baseline_days=body.baseline_days,
    )
    async with runtime.sessions() as session, session.begin():
        if await repo.get(session, pilot.pilot_id) is not None:
            raise HTTPException(409, "a pilot with this id already exists")
        await repo.create(session, pilot, principal.subject, runtime.clock.now())
    return view(pilot)


@router.get("/pilots", summary="Pilots of a clinic")
async def list_pilots(
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    clinic_id: Annotated[str, Query(min_length=1, max_length=64)],
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    async with runtime.sessions() as session:
        found = await repo.list_for(session, clinic_id)
    now = runtime.clock.now()
    return {"clinic_id": clinic_id, "pilots": [view(p, now) for p in found]}


@router.get("/pilots/{pilot_id}", summary="One pilot with its arm sizes and its phase")
async def get_pilot(
    pilot_id: PilotId, principal: CurrentPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    async with runtime.sessions() as session:
        pilot = await find_pilot(session, pilot_id, principal)
        arms = await repo.arm_counts(session, pilot_id)
    return {
        **view(pilot, runtime.clock.now()),
        "arms": {"outreach": arms.get("outreach", 0), "holdout": arms.get("holdout", 0)},
    }


@router.patch("/pilots/{pilot_id}", summary="Change a draft pilot (admin)")
async def change_pilot(
    pilot_id: PilotId, body: PilotChange, principal: Admin, runtime: RuntimeDep
) -> dict[str, Any]:
    async with runtime.sessions() as session, session.begin():
        pilot = await find_pilot(session, pilot_id, principal, lock=True)
        if pilot.status is not PilotStatus.draft:
            raise HTTPException(409, "only a draft pilot can be changed")
        given = {k: getattr(body, k) for k in body.model_fields_set}
        changes = {k: v for k, v in given.items() if v is not None}
        pilot = replace(pilot, **changes)
        await repo.save(session, pilot)
    return view(pilot)


@router.delete("/pilots/{pilot_id}", summary="Delete a draft pilot (admin)")
async def delete_pilot(pilot_id: PilotId, principal: Admin, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.sessions() as session, session.begin():
        pilot = await find_pilot(session, pilot_id, principal, lock=True)
        if pilot.status is not PilotStatus.draft:
            raise HTTPException(409, "only a draft pilot can be deleted; close a running one")
        await repo.delete(session, pilot_id)
    return {"pilot_id": pilot_id, "deleted": True}


@router.post(
    "/pilots/{pilot_id}/start",
    summary="Start week 1 (admin): define, screen and hold the cohort; nobody is messaged",
)
async def start_pilot(pilot_id: PilotId, principal: Admin, runtime: RuntimeDep) -> dict[str, Any]:
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        pilot = await find_pilot(session, pilot_id, principal, lock=True)
        running = await repo.running_for(session, [pilot.clinic_id])
        if any(p.segment is pilot.segment for p in running if p.pilot_id != pilot_id):
            raise HTTPException(409, "another pilot is already running for this segment")
        try:
            pilot = rules.start(pilot, now)
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        await repo.save(session, pilot)
    return view(pilot, now)


async def close_and_complete(
    runtime: Runtime, session: AsyncSession, pilot: Pilot
) -> tuple[Pilot, int]:
    """Close ``pilot`` (no new enrolment) and complete its holdouts' sequences."""
    now = runtime.clock.now()
    try:
        pilot = rules.close(pilot, now)
    except ValueError as exc:
        raise HTTPException(409, str(exc)) from None
    await repo.save(session, pilot)
    keys = await repo.holdouts_of(session, pilot.pilot_id)
    batch = Batch(runtime, session, base_rules(runtime))
    await batch.load(keys)
    for key in keys:
        active = batch.active_of(key)
        if active is None or active.pilot_id != pilot.pilot_id:
            continue
        ctx = batch.context(pilot.clinic_id, now)
        out = operators.close_holdout(batch.patient(key), active, ctx)
        batch.apply(out, clinic_id=pilot.clinic_id, patient_key=key, now=now)
    await batch.flush()
    return pilot, len(keys)


@router.post("/pilots/{pilot_id}/close", summary="Close (admin): no new enrolment; holdouts end")
async def close_pilot(pilot_id: PilotId, principal: Admin, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.sessions() as session, session.begin():
        pilot = await find_pilot(session, pilot_id, principal, lock=True)
        pilot, completed = await close_and_complete(runtime, session, pilot)
    return {**view(pilot, runtime.clock.now()), "holdouts_completed": completed}
