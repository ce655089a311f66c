"""Workflows (per clinic or for every clinic), each clinic's outreach rules, states' hours.

Anyone in scope reads; only admins write. ``clinic_id="*"`` (every clinic) needs an admin whose
credential covers every clinic.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from sqlalchemy import text

from services.sequencer.api.deps import RuntimeDep, base_rules
from services.sequencer.batch import Batch, policies_of
from services.sequencer.domain.rules import Rules
from services.sequencer.domain.workflows import DEFAULT_WORKFLOWS, Catalogue
from services.sequencer.policy import (
    ClinicRules,
    StateHours,
    WorkflowDefinition,
    describe,
    rules_for,
)
from services.sequencer.repository import SCHEMA, config
from shared.auth import Admin, CurrentPrincipal, require_clinic
from shared.events.common import StateCode
from shared.ids import ClinicId
from shared.runtime import Runtime

router = APIRouter(tags=["workflows and rules"])
DEFAULT_KEYS = frozenset(wf.key for wf in DEFAULT_WORKFLOWS)
WorkflowClinic = Annotated[
    str,
    Query(
        min_length=1,
        max_length=64,
        pattern=r"^(\*|[^:\s]+)$",
        description="The clinic, or '*' for every clinic (admins covering every clinic only).",
    ),
]
WorkflowKey = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]


async def _catalogue(runtime: Runtime, clinic_id: str) -> Catalogue:
    async with runtime.sessions() as session:
        batch = Batch(runtime, session, base_rules(runtime))
        await batch.load_clinics({clinic_id})
    return batch.contexts[clinic_id][1]


@router.get("/workflows", summary="The workflows in force for a clinic")
async def list_workflows(
    principal: CurrentPrincipal, runtime: RuntimeDep, clinic_id: WorkflowClinic
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    catalogue = await _catalogue(runtime, clinic_id)
    return {
        "clinic_id": clinic_id,
        "workflows": [describe(wf) for wf in catalogue.by_key.values()],
    }


@router.get("/workflows/{workflow_key}", summary="One workflow as it applies to a clinic")
async def get_workflow(
    workflow_key: WorkflowKey,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    clinic_id: WorkflowClinic,
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    wf = (await _catalogue(runtime, clinic_id)).get(workflow_key)
    if wf is None:
        raise HTTPException(404, "no such workflow for this clinic")
    return describe(wf)


@router.put("/workflows/{workflow_key}", summary="Create or replace a workflow (admin)")
async def put_workflow(
    workflow_key: WorkflowKey,
    definition: WorkflowDefinition,
    principal: Admin,
    runtime: RuntimeDep,
    clinic_id: WorkflowClinic,
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    try:
        wf = definition.to_workflow(workflow_key)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    async with runtime.sessions() as session, session.begin():
        await config.put_workflow(
            session, clinic_id, workflow_key, definition, principal.subject, runtime.clock.now()
        )
    policies_of(runtime).clear()
    return describe(wf)


@router.delete(
    "/workflows/{workflow_key}",
    summary="Remove a clinic's version of a workflow (a default workflow reverts to its default)",
)
async def delete_workflow(
    workflow_key: WorkflowKey,
    principal: Admin,
    runtime: RuntimeDep,
    clinic_id: WorkflowClinic,
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    async with runtime.sessions() as session, session.begin():
        if workflow_key not in DEFAULT_KEYS:
            where = "" if clinic_id == "*" else "AND clinic_id = :c"
            running = (
                await session.execute(
                    text(
                        f"SELECT count(*) FROM {SCHEMA}.sequences WHERE workflow_key = :k "
                        f"AND state = 'active' {where}"
                    ),
                    {"k": workflow_key, "c": clinic_id},
                )
            ).scalar_one()
            if running:
                raise HTTPException(
                    409, f"{running} active sequence(s) use this workflow; stop them first"
                )
        removed = await config.delete_workflow(session, clinic_id, workflow_key)
    policies_of(runtime).clear()
    if not removed:
        raise HTTPException(404, "this clinic has no version of that workflow")
    return {"workflow_key": workflow_key, "clinic_id": clinic_id, "removed": True}


def _refuse_conflicts(effective: Rules, what: str) -> None:
    conflicts = effective.policy.conflicts()
    if conflicts:
        raise HTTPException(
            422,
            f"{what} ({effective.hours.start:%H:%M}-{effective.hours.end:%H:%M}) do not overlap "
            f"the allowed hours of {', '.join(conflicts)}: patients living there could never be "
            "messaged",
        )


def _rules_view(rules: Rules) -> dict[str, Any]:
    return {
        "time_zone": rules.zone,
        "allowed_from": rules.hours.start.isoformat(timespec="minutes"),
        "allowed_until": rules.hours.end.isoformat(timespec="minutes"),
        "per_day": rules.per_day,
        "per_week": rules.per_week,
        "rest_days": rules.rest_days,
        "decline_rest_days": rules.decline_rest_days,
        "snooze_default_days": rules.snooze_default_days,
        "snooze_max_days": rules.snooze_max_days,
        "concern_hold_hours": rules.concern_hold_hours,
        "booking_hold_days": rules.booking_hold_days,
        "close_after_hours": rules.close_after_hours,
        "recovery_head_start_hours": rules.recovery_head_start_hours,
    }


@router.get("/clinics/{clinic_id}/rules", summary="A clinic's outreach rules and the result")
async def get_rules(
    clinic_id: ClinicId, principal: CurrentPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    async with runtime.sessions() as session:
        stored = (await config.clinic_rules(session, [clinic_id])).get(clinic_id)
        batch = Batch(runtime, session, base_rules(runtime))
        await batch.load_clinics({clinic_id})
    return {
        "clinic_id": clinic_id,
        "overrides": stored.model_dump(mode="json", exclude_none=True) if stored else {},
        "effective": _rules_view(batch.contexts[clinic_id][0]),
    }


@router.put("/clinics/{clinic_id}/rules", summary="Set a clinic's outreach rules (admin)")
async def put_rules(
    clinic_id: ClinicId, rules: ClinicRules, principal: Admin, runtime: RuntimeDep
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    async with runtime.sessions() as session, session.begin():
        # A state with no stricter hours listed simply leaves the clinic's own hours.
        hours = await config.state_hours(session)
        try:
            effective = rules_for(base_rules(runtime), rules, hours)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        _refuse_conflicts(effective, "this clinic's hours")
        await config.put_clinic_rules(
            session, clinic_id, rules, principal.subject, runtime.clock.now()
        )
    policies_of(runtime).clear()
    return {
        "clinic_id": clinic_id,
        "overrides": rules.model_dump(mode="json", exclude_none=True),
        "effective": _rules_view(effective),
    }


@router.get("/quiet-hours/states", summary="States' allowed hours (narrow every clinic there)")
async def list_states(principal: CurrentPrincipal, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.sessions() as session:
        hours = await config.state_hours(session)
    return {"states": {code: h.model_dump(mode="json") for code, h in sorted(hours.items())}}


@router.put(
    "/quiet-hours/states/{state_code}",
    summary="Set a state's allowed hours (admin covering every clinic)",
)
async def put_state(
    state_code: Annotated[StateCode, Path()],
    hours: StateHours,
    principal: Admin,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    require_clinic(principal, "*")
    async with runtime.sessions() as session, session.begin():
        table = {**await config.state_hours(session), state_code: hours}
        stored = await config.all_clinic_rules(session)
        base = base_rules(runtime)
        for clinic_id, clinic in sorted({"(default)": None, **stored}.items()):
            effective = rules_for(base, clinic, table)
            if state_code in effective.policy.conflicts():
                raise HTTPException(
                    422,
                    f"{state_code} hours {hours.allowed_from:%H:%M}-{hours.allowed_until:%H:%M} "
                    f"do not overlap the allowed hours of {clinic_id}: its patients living in "
                    f"{state_code} could never be messaged",
                )
        await config.put_state_hours(
            session, state_code, hours, principal.subject, runtime.clock.now()
        )
    policies_of(runtime).clear()
    return {"state": state_code, **hours.model_dump(mode="json")}
