"""The segmenter's ops API: journeys, why a patient is in or out of each segment, who is about to
become due, and each clinic's segment parameters.

Every route needs a staff credential and checks the clinic scope before reading anything; the
clinic of a patient is the first part of its key. Viewers read; only admins change parameters.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from pydantic import ValidationError
from sqlalchemy import text

from services.segmenter import repository
from services.segmenter.domain.explain import explain, journey_view
from services.segmenter.domain.params import BLOCK_NAMES, block_model, effective
from services.segmenter.domain.rules import RULES
from services.segmenter.handlers import REEVALUATE_TIMER
from services.segmenter.repository import SCHEMA, clinic_of
from shared.auth import Admin, CurrentPrincipal, require_clinic
from shared.events.envelope import describe_validation_error
from shared.ids import ClinicId, PatientKey
from shared.runtime import Runtime

router = APIRouter(tags=["segmenter"])

Block = Literal[
    "general",
    "follow_up_not_booked",
    "series_incomplete",
    "cancelled_not_rescheduled",
    "cosmetic_maintenance_due",
    "chronic_review_overdue",
    "question_no_review",
    "lapsed_patient",
    "consult_no_treatment",
]
assert set(get_args(Block)) == set(BLOCK_NAMES)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


async def _state(runtime: Runtime, patient_key: str) -> tuple[Any, Any]:
    clinic = clinic_of(patient_key)
    async with runtime.sessions() as session:
        states = await repository.load_states(session, [patient_key], lock=False)
        params, _ = (await repository.load_params(session, [clinic]))[clinic]
    state = states.get(patient_key)
    if state is None:
        raise HTTPException(404, "no journey is recorded for this patient")
    return state, params


@router.get("/patients/{patient_key}/journey", summary="The patient's care journey")
async def get_journey(
    patient_key: PatientKey, principal: CurrentPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    require_clinic(principal, clinic_of(patient_key))
    state, params = await _state(runtime, patient_key)
    return journey_view(state, params, runtime.clock.now())


@router.get(
    "/patients/{patient_key}/segments",
    summary="Why the patient is in or out of each segment, with the source records",
)
async def get_segments(
    patient_key: PatientKey, principal: CurrentPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    require_clinic(principal, clinic_of(patient_key))
    state, params = await _state(runtime, patient_key)
    return explain(state, params, runtime.clock.now())


@router.get("/segments", summary="Every segment rule; with clinic_id, its membership counts")
async def list_segments(
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    clinic_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> dict[str, Any]:
    counts: dict[str, dict[str, int]] = {}
    if clinic_id is not None:
        require_clinic(principal, clinic_id)
        async with runtime.sessions() as session:
            rows = await session.execute(
                text(
                    f"SELECT segment, status, count(*) AS n FROM {SCHEMA}.memberships "
                    "WHERE clinic_id = :c AND status <> 'closed' GROUP BY segment, status"
                ),
                {"c": clinic_id},
            )
            for r in rows:
                counts.setdefault(r.segment, {})[r.status] = r.n
    return {
        "segments": [
            {
                "segment": rule.segment.value,
                "kind": rule.kind.value,
                "rule": rule.summary,
                **({"memberships": counts.get(rule.segment.value, {})} if clinic_id else {}),
            }
            for rule in RULES.values()
        ]
    }


# --- parameters -----------------------------------------------------------------------------


@router.get("/clinics/{clinic_id}/segment-params", summary="A clinic's effective parameters")
async def get_params(
    clinic_id: ClinicId, principal: CurrentPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    async with runtime.sessions() as session:
        overrides, version = await repository.overrides_of(session, clinic_id)
    return {
        "clinic_id": clinic_id,
        "version": version,
        "overridden": sorted(overrides),
        "parameters": effective(overrides).model_dump(mode="json"),
    }


@router.get("/clinics/{clinic_id}/segment-params/{block}", summary="One block of parameters")
async def get_param_block(
    clinic_id: ClinicId, block: Block, principal: CurrentPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    async with runtime.sessions() as session:
        overrides, version = await repository.overrides_of(session, clinic_id)
    return _block_view(clinic_id, block, overrides, version)


def _block_view(
    clinic_id: str, block: str, overrides: dict[str, Any], version: int
) -> dict[str, Any]:
    value = getattr(effective(overrides), block)
    return {
        "clinic_id": clinic_id,
        "block": block,
        "version": version,
        "overridden": block in overrides,
        "parameters": value.model_dump(mode="json"),
    }


@router.put(
    "/clinics/{clinic_id}/segment-params/{block}",
    summary="Replace one block (admin); the clinic's patients are re-evaluated",
)
async def put_param_block(
    clinic_id: ClinicId,
    block: Block,
    principal: Admin,
    runtime: RuntimeDep,
    body: Annotated[dict[str, Any], Body(description="the block's parameters; omitted: default")],
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    try:
        value = block_model(block).model_validate(body)
    except ValidationError as exc:
        raise HTTPException(422, describe_validation_error(exc, f"{block}.")) from None
    return await _change(
        runtime, clinic_id, block, value.model_dump(mode="json"), principal.subject
    )


@router.delete(
    "/clinics/{clinic_id}/segment-params/{block}",
    summary="Reset one block to the defaults (admin); the clinic's patients are re-evaluated",
)
async def delete_param_block(
    clinic_id: ClinicId, block: Block, principal: Admin, runtime: RuntimeDep
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    return await _change(runtime, clinic_id, block, None, principal.subject)


async def _change(
    runtime: Runtime, clinic_id: str, block: str, value: dict[str, Any] | None, who: str
) -> dict[str, Any]:
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('segmenter-params:' || :c))"),
            {"c": clinic_id},
        )
        overrides, _ = await repository.overrides_of(session, clinic_id)
        if value is None:
            overrides.pop(block, None)
        else:
            overrides[block] = value
        try:
            effective(overrides)  # the blocks must also make sense together
        except ValidationError as exc:
            raise HTTPException(422, describe_validation_error(exc)) from None
        version = await repository.store_overrides(session, clinic_id, overrides, who)
        await runtime.timers.schedule(session, REEVALUATE_TIMER, clinic_id, runtime.clock.now())
    return _block_view(clinic_id, block, overrides, version)
