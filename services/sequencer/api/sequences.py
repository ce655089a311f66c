"""Sequences and steps by patient, segment or state; pausing, resuming and stopping a patient's
outreach (the preview of what would go out is in ``previews.py``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from services.sequencer.api.deps import (
    Decide,
    RuntimeDep,
    apply_to_patient,
    scoped_patient,
)
from services.sequencer.domain import operators
from services.sequencer.domain.model import Sequence, State, clinic_of
from services.sequencer.repository import queries, state
from shared.auth import CurrentPrincipal, Operator, require_clinic
from shared.events.common import Segment
from shared.ids import PatientKey
from shared.runtime import Runtime

router = APIRouter(tags=["sequences"])
ClinicQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[^:\s]+$")]


def sequence_view(seq: Sequence) -> dict[str, Any]:
    return {
        "sequence_id": seq.sequence_id,
        "patient_key": seq.patient_key,
        "eligibility_id": seq.eligibility_id,
        "segment": seq.segment.value,
        "service_line": seq.service_line.value,
        "workflow_key": seq.workflow_key,
        "purpose": seq.purpose.value,
        "reason": seq.reason,
        "state": seq.state.value,
        "stop_reason": seq.stop_reason.value if seq.stop_reason else None,
        "steps_planned": seq.steps_planned,
        "steps_sent": seq.steps_sent,
        "next_step": seq.next_step,
        "next_due": seq.next_due.isoformat() if seq.next_due else None,
        "waiting_for_pause_to_lift": seq.is_active and seq.next_step is not None and not seq.armed,
        "snoozed_until": seq.snoozed_until.isoformat() if seq.snoozed_until else None,
        "pilot_id": seq.pilot_id,
        "arm": seq.arm.value,
        "started_at": seq.started_at.isoformat(),
        "closed_at": seq.closed_at.isoformat() if seq.closed_at else None,
    }


@router.get("/sequences", summary="Sequences by clinic, patient, segment, state or pilot")
async def list_sequences(
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    clinic_id: ClinicQuery | None = None,
    patient_key: Annotated[str | None, Query(pattern=r"^[^:\s]+:\S+$", max_length=200)] = None,
    segment: Segment | None = None,
    state_: Annotated[State | None, Query(alias="state")] = None,
    pilot_id: Annotated[str | None, Query(max_length=128)] = None,
    steps: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    if clinic_id is None and patient_key is None:
        raise HTTPException(422, "give clinic_id or patient_key")
    clinic = clinic_id or clinic_of(patient_key or "")
    if patient_key is not None and clinic_of(patient_key) != clinic:
        raise HTTPException(422, "patient_key belongs to another clinic than clinic_id")
    require_clinic(principal, clinic)
    async with runtime.sessions() as session:
        found = await queries.sequences(
            session,
            clinic,
            patient_key=patient_key,
            segment=segment.value if segment else None,
            state=state_.value if state_ else None,
            pilot_id=pilot_id,
            limit=limit,
        )
        by_seq = await queries.steps(session, [s.sequence_id for s in found]) if steps else {}
    views = [sequence_view(s) for s in found]
    if steps:
        for view in views:
            view["steps"] = by_seq.get(str(view["sequence_id"]), [])
    return {"clinic_id": clinic, "sequences": views}


@router.get("/sequences/{sequence_id}", summary="One sequence with its steps and activity")
async def get_sequence(
    sequence_id: str, principal: CurrentPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    async with runtime.sessions() as session:
        found = (await state.load_sequences(session, [sequence_id], lock=False)).get(sequence_id)
        # Unknown and out-of-scope answer alike, so a probe learns nothing about other clinics.
        if found is None or not principal.may_access(found.clinic_id):
            raise HTTPException(404, "no such sequence in the clinics this credential covers")
        steps = (await queries.steps(session, [sequence_id]))[sequence_id]
        activity = await queries.activity(session, sequence_id)
    return {**sequence_view(found), "steps": steps, "activity": activity}


@router.get("/patients/{patient_key}/outreach", summary="A patient's outreach state and history")
async def patient_outreach(
    patient_key: PatientKey, principal: CurrentPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    clinic = scoped_patient(principal, patient_key)
    async with runtime.sessions() as session:
        patient = (await state.load_patients(session, [patient_key], lock=False))[patient_key]
        found = await queries.sequences(session, clinic, patient_key=patient_key, limit=50)
        by_seq = await queries.steps(session, [s.sequence_id for s in found])
    now = runtime.clock.now()
    return {
        "patient_key": patient_key,
        "paused_by_staff": patient.operator_paused,
        "open_escalations": len(patient.escalations),
        "opted_out": sorted(patient.opt_outs),
        "messages_last_7_days": sum(1 for s in patient.sends if s.at > now - timedelta(days=7)),
        "rest_until": patient.rest_until.isoformat() if patient.rest_until else None,
        "time_zone": patient.time_zone,
        "sequences": [{**sequence_view(s), "steps": by_seq.get(s.sequence_id, [])} for s in found],
    }


async def _operate(runtime: Runtime, patient_key: str, decide: Decide) -> dict[str, Any]:
    async with runtime.sessions() as session, session.begin():
        out = await apply_to_patient(runtime, session, patient_key, decide)
    return {
        "patient_key": patient_key,
        "paused_by_staff": out.patient.operator_paused,
        "sequences": [sequence_view(s) for s in out.sequences.values()],
    }


@router.post("/patients/{patient_key}/pause", summary="Pause the patient's outreach (operator)")
async def pause(
    patient_key: PatientKey, principal: Operator, runtime: RuntimeDep
) -> dict[str, Any]:
    scoped_patient(principal, patient_key)
    return await _operate(runtime, patient_key, operators.pause)


@router.post("/patients/{patient_key}/resume", summary="Resume the patient's outreach (operator)")
async def resume(
    patient_key: PatientKey, principal: Operator, runtime: RuntimeDep
) -> dict[str, Any]:
    scoped_patient(principal, patient_key)
    return await _operate(runtime, patient_key, operators.resume)


@router.post(
    "/patients/{patient_key}/stop", summary="Stop the patient's active sequence (operator)"
)
async def stop(patient_key: PatientKey, principal: Operator, runtime: RuntimeDep) -> dict[str, Any]:
    scoped_patient(principal, patient_key)
    return await _operate(runtime, patient_key, operators.stop_by_staff)
