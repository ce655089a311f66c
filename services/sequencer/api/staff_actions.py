"""Pausing, resuming or stopping a patient's outreach with a reason, and the record of who did
which and why. The same decisions as ``/patients/{key}/pause|resume|stop`` (operator), with the
reason written in the same transaction, so the patient's story says why outreach stopped."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from services.sequencer.api.deps import RuntimeDep, apply_to_patient, scoped_patient
from services.sequencer.api.sequences import sequence_view
from services.sequencer.domain import operators
from services.sequencer.repository import staff_actions
from shared.auth import CurrentPrincipal, Operator
from shared.ids import PatientKey

router = APIRouter(tags=["sequences"])
NOTE_MAX = 500
_DECIDE = {
    "pause": operators.pause,
    "resume": operators.resume,
    "stop": operators.stop_by_staff,
}


class ActionReason(StrEnum):
    """Why staff changed a patient's outreach, in the practice's words."""

    patient_asked = "patient_asked"  # by phone or at the desk
    booked_elsewhere = "booked_elsewhere"
    clinical_hold = "clinical_hold"  # a clinician wants no messages for now
    wrong_contact = "wrong_contact"
    deceased_or_moved = "deceased_or_moved"
    concern_in_progress = "concern_in_progress"
    other = "other"


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: ActionReason
    # Staff free text, shown to staff only; its length is checked in the route so a refusal
    # never echoes it.
    note: Annotated[str, Field(max_length=5000)] = ""


@router.post(
    "/patients/{patient_key}/outreach/{action}",
    summary="Pause, resume or stop the patient's outreach, with a reason (operator)",
)
async def act(
    patient_key: PatientKey,
    action: Literal["pause", "resume", "stop"],
    body: ActionRequest,
    principal: Operator,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    clinic = scoped_patient(principal, patient_key)
    note = body.note.strip() or None
    if note is not None and len(note) > NOTE_MAX:
        raise HTTPException(422, f"note: at most {NOTE_MAX} characters")
    async with runtime.sessions() as session, session.begin():
        out = await apply_to_patient(runtime, session, patient_key, _DECIDE[action])
        await staff_actions.record(
            session,
            clinic_id=clinic,
            patient_key=patient_key,
            action=action,
            reason=body.reason.value,
            note=note,
            actor=principal.subject,
            at=runtime.clock.now(),
        )
    return {
        "patient_key": patient_key,
        "action": action,
        "reason": body.reason.value,
        "paused_by_staff": out.patient.operator_paused,
        "sequences": [sequence_view(s) for s in out.sequences.values()],
    }


@router.get(
    "/patients/{patient_key}/outreach/actions",
    summary="Who paused, resumed or stopped the patient's outreach, and why",
)
async def actions(
    patient_key: PatientKey, principal: CurrentPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    scoped_patient(principal, patient_key)
    async with runtime.sessions() as session:
        found = await staff_actions.for_patient(session, patient_key)
    return {"patient_key": patient_key, "actions": found}
