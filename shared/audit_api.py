"""``/admin/audit``: a clinic's audit rows (by patient, staff member, time); the chain check.

Served by every service (the log is one chain for all of them). A clinic's admin reads only
that clinic's rows; checking the whole chain spans clinics, so it needs an admin of every clinic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from shared import audit_log
from shared.auth import Admin, require_clinic

_ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, malformed, expired or revoked credential"},
    403: {"description": "not an admin of that clinic (or, to verify, of every clinic)"},
    422: {"description": "invalid request: names what is wrong"},
}
router = APIRouter(prefix="/admin/audit", tags=["admin"], responses=_ANSWERS)


@router.get("", summary="Who read or changed a clinic's patient data, oldest first")
async def audit_rows(
    request: Request,
    principal: Admin,
    clinic_id: str | None = None,
    patient_key: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    after_id: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    if clinic_id is None and patient_key and ":" in patient_key:
        clinic_id = patient_key.split(":", 1)[0]
    if clinic_id is None and principal.clinics is not None:
        if len(principal.clinics) != 1:
            raise HTTPException(422, "clinic_id: say which of your clinics to read")
        clinic_id = next(iter(principal.clinics))
    if clinic_id is not None:
        require_clinic(principal, clinic_id)
    if patient_key and clinic_id and not patient_key.startswith(f"{clinic_id}:"):
        raise HTTPException(422, "patient_key: not a patient of clinic_id")
    query = audit_log.AuditQuery(clinic_id, patient_key, subject, since, until, limit, after_id)
    rows = await audit_log.find(request.app.state.runtime.engine, query)
    return {"count": len(rows), "rows": rows, "next_after_id": rows[-1]["id"] if rows else None}


@router.get("/verify", summary="Check the hash chain: a changed or removed row is named")
async def verify_chain(request: Request, principal: Admin) -> dict[str, Any]:
    if principal.clinics is not None:
        raise HTTPException(403, "the chain spans clinics: an admin token for every clinic")
    verdict = await audit_log.verify(request.app.state.runtime.engine)
    return verdict.as_dict()
