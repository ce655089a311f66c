"""``POST /admin/patients/erase``: erase one patient's data across every schema (shared.erasure).

Served by every service, so a clinic's admin can reach it from whichever API they use; the
work and its audit row are the same as ``revisit patient erase``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from shared.audit import note_patients
from shared.auth import Admin, require_clinic
from shared.erasure import erase_patient

_ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, malformed, expired or revoked credential"},
    403: {"description": "not an admin of that clinic"},
    422: {"description": "invalid request: names what is wrong"},
}
router = APIRouter(prefix="/admin/patients", tags=["admin"], responses=_ANSWERS)


class ErasureRequest(BaseModel):
    clinic_id: str = Field(min_length=1, max_length=200, pattern=r"^[^:]+$")
    patient_id: str = Field(min_length=1, max_length=200)


@router.post("/erase", summary="Remove or redact one patient's data (counts and audit stay)")
async def erase(request: Request, principal: Admin, body: ErasureRequest) -> dict[str, Any]:
    require_clinic(principal, body.clinic_id)
    note_patients(request, [f"{body.clinic_id}:{body.patient_id}"])
    runtime = request.app.state.runtime
    client = request.client.host if request.client else None
    done = await erase_patient(
        runtime.engine,
        body.clinic_id,
        body.patient_id,
        who={
            "service": runtime.service,
            "subject": principal.subject,
            "role": principal.role,
            "principal_kind": principal.kind,
            "client": client,
            "method": "POST",
            "route": "/admin/patients/erase",
        },
    )
    changed = {table: n for table, n in done.rows.items() if n}
    return {"patient_key": done.patient_key, "rows": changed}
