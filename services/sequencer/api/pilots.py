"""Pilots through the API: define (draft), start, review weekly, close.

A pilot names one segment of one clinic, a cohort size, a holdout share and a length in days.
Started, it enrols that segment's new eligibilities until the cohort is full or the window ends;
each patient's arm comes from a hash of the pilot and the patient, and is recorded.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.sequencer.api.deps import RuntimeDep, base_rules
from services.sequencer.batch import Batch
from services.sequencer.domain import operators
from services.sequencer.domain import pilots as rules
from services.sequencer.domain.pilots import Pilot, PilotStatus
from services.sequencer.repository import pilots as repo
from shared.auth import Admin, CurrentPrincipal, Operator, Principal, require_clinic
from shared.events.common import Segment

router = APIRouter(tags=["pilots"])
PilotId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.\-]*$")]
Share = Annotated[float, Field(ge=0.0, le=0.9)]


class PilotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pilot_id: (
        Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.\-]*$", max_length=64)] | None
    ) = None
    clinic_id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^:\s*]+$")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    segment: Segment
    cohort_size: Annotated[int, Field(ge=1, le=1_000_000)]
    holdout_share: Share = 0.2
    days: Annotated[int, Field(ge=1, le=365)] = 30


class PilotChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = None
    segment: Segment | None = None
    cohort_size: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    holdout_share: Share | None = None
    days: Annotated[int, Field(ge=1, le=365)] | None = None


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    week: Annotated[int, Field(ge=1, le=60)]
    decision: Literal["continue", "adjust", "stop"]
    # Staff notes about the cohort as a whole: never patient names, numbers or words.
    note: Annotated[str, StringConstraints(max_length=1000)] = ""


def view(p: Pilot) -> dict[str, Any]:
    return {
        "pilot_id": p.pilot_id,
        "clinic_id": p.clinic_id,
        "name": p.name,
        "segment": p.segment.value,
        "cohort_size": p.cohort_size,
        "holdout_share": p.holdout_share,
        "days": p.days,
        "status": p.status.value,
        "starts_at": p.starts_at.isoformat() if p.starts_at else None,
        "ends_at": p.ends_at.isoformat() if p.ends_at else None,
        "closed_at": p.closed_at.isoformat() if p.closed_at else None,
        "enrolled": p.enrolled,
    }


async def _pilot(session: Any, pilot_id: str, principal: Principal, *, lock: bool = False) -> Pilot:
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
    return {"clinic_id": clinic_id, "pilots": [view(p) for p in found]}


@router.get("/pilots/{pilot_id}", summary="One pilot with its arm sizes")
async def get_pilot(
    pilot_id: PilotId, principal: CurrentPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    async with runtime.sessions() as session:
        pilot = await _pilot(session, pilot_id, principal)
        arms = await repo.arm_counts(session, pilot_id)
    return {
        **view(pilot),
        "arms": {"outreach": arms.get("outreach", 0), "holdout": arms.get("holdout", 0)},
    }


@router.patch("/pilots/{pilot_id}", summary="Change a draft pilot (admin)")
async def change_pilot(
    pilot_id: PilotId, body: PilotChange, principal: Admin, runtime: RuntimeDep
) -> dict[str, Any]:
    async with runtime.sessions() as session, session.begin():
        pilot = await _pilot(session, pilot_id, principal, lock=True)
        if pilot.status is not PilotStatus.draft:
            raise HTTPException(409, "only a draft pilot can be changed")
        changes = body.model_dump(exclude_none=True)
        pilot = replace(pilot, **changes)
        await repo.save(session, pilot)
    return view(pilot)


@router.delete("/pilots/{pilot_id}", summary="Delete a draft pilot (admin)")
async def delete_pilot(pilot_id: PilotId, principal: Admin, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.sessions() as session, session.begin():
        pilot = await _pilot(session, pilot_id, principal, lock=True)
        if pilot.status is not PilotStatus.draft:
            raise HTTPException(409, "only a draft pilot can be deleted; close a running one")
        await repo.delete(session, pilot_id)
    return {"pilot_id": pilot_id, "deleted": True}


@router.post("/pilots/{pilot_id}/start", summary="Start enrolling (admin)")
async def start_pilot(pilot_id: PilotId, principal: Admin, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.sessions() as session, session.begin():
        pilot = await _pilot(session, pilot_id, principal, lock=True)
        running = await repo.running_for(session, [pilot.clinic_id])
        if any(p.segment is pilot.segment for p in running if p.pilot_id != pilot_id):
            raise HTTPException(409, "another pilot is already running for this segment")
        try:
            pilot = rules.start(pilot, runtime.clock.now())
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        await repo.save(session, pilot)
    return view(pilot)


@router.post("/pilots/{pilot_id}/close", summary="Close (admin): no new enrolment; holdouts end")
async def close_pilot(pilot_id: PilotId, principal: Admin, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.sessions() as session, session.begin():
        pilot = await _pilot(session, pilot_id, principal, lock=True)
        try:
            pilot = rules.close(pilot, runtime.clock.now())
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        await repo.save(session, pilot)
        keys = await repo.holdouts_of(session, pilot_id)
        batch = Batch(runtime, session, base_rules(runtime))
        await batch.load(keys)
        now = runtime.clock.now()
        for key in keys:
            active = batch.active_of(key)
            if active is None or active.pilot_id != pilot_id:
                continue
            out = operators.close_holdout(
                batch.patient(key), active, batch.context(pilot.clinic_id, now)
            )
            batch.apply(out, clinic_id=pilot.clinic_id, patient_key=key, now=now)
        await batch.flush()
    return {**view(pilot), "holdouts_completed": len(keys)}


@router.get("/pilots/{pilot_id}/review", summary="Week-by-week figures per arm, and staff reviews")
async def review(
    pilot_id: PilotId, principal: CurrentPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    async with runtime.sessions() as session:
        pilot = await _pilot(session, pilot_id, principal)
        facts = await repo.facts(session, pilot_id) if pilot.starts_at else []
        reviews = await repo.reviews(session, pilot_id)
        arms = await repo.arm_counts(session, pilot_id)
    weeks = rules.review(pilot, facts) if pilot.starts_at else {}
    return {
        **view(pilot),
        "arms": {"outreach": arms.get("outreach", 0), "holdout": arms.get("holdout", 0)},
        "weeks": [
            {"week": w, **{arm: cell.as_dict() for arm, cell in sorted(weeks[w].items())}}
            for w in sorted(weeks)
        ],
        "reviews": reviews,
        "note": "Operational counts per arm and week; the metrics service compares completed "
        "visits and revenue between the arms with confidence intervals.",
    }


@router.post("/pilots/{pilot_id}/reviews", status_code=201, summary="Record a weekly review")
async def add_review(
    pilot_id: PilotId, body: ReviewIn, principal: Operator, runtime: RuntimeDep
) -> dict[str, Any]:
    async with runtime.sessions() as session, session.begin():
        pilot = await _pilot(session, pilot_id, principal)
        if pilot.status is PilotStatus.draft:
            raise HTTPException(409, "a draft pilot has nothing to review yet")
        at = runtime.clock.now()
        await repo.add_review(
            session, pilot_id, body.week, body.decision, body.note, principal.subject, at
        )
    return {
        "pilot_id": pilot_id,
        "week": body.week,
        "decision": body.decision,
        "reviewed_at": at.isoformat(),
    }
