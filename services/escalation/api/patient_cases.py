"""Every case of one patient, open or closed: any role in the patient's clinic."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.escalation.api.deps import EscalationDep
from services.escalation.repository import patient_cases
from shared.auth import CurrentPrincipal, require_clinic
from shared.ids import PatientKey

router = APIRouter(tags=["cases"])


@router.get("/patients/{patient_key}/cases", summary="A patient's cases, newest first")
async def cases_of_patient(
    patient_key: PatientKey,
    esc: EscalationDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    require_clinic(principal, patient_key.split(":", 1)[0])
    async with esc.runtime.sessions() as session:
        found = await patient_cases.for_patient(session, patient_key, limit)
    return {"patient_key": patient_key, "cases": found}
