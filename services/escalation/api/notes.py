"""Notes on a case while it is worked: what was tried, who was called. Reading needs any role in
the case's clinic, writing needs ``operator``; a case outside the caller's clinics answers 404,
like one that does not exist."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict

from services.escalation.api.cases import CaseId
from services.escalation.api.deps import NOT_FOUND, NOTE_MAX, EscalationDep, audit_case_patient
from services.escalation.domain import AuditEntry
from services.escalation.repository import audit, cases, notes
from services.escalation.workflow import Escalation
from shared.auth import CurrentPrincipal, Operator, Principal

router = APIRouter(tags=["cases"], dependencies=[Depends(audit_case_patient)])


class NoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Checked in the route, so a refusal never echoes the text.
    note: str


async def _clinic_of(esc: Escalation, escalation_id: str, principal: Principal) -> str:
    async with esc.runtime.sessions() as session:
        case = await cases.get(session, escalation_id)
    if case is None or not principal.may_access(case.clinic_id):
        raise HTTPException(404, NOT_FOUND)
    return case.clinic_id


@router.get("/cases/{escalation_id}/notes", summary="Staff notes on the case, oldest first")
async def list_notes(
    escalation_id: CaseId, esc: EscalationDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    await _clinic_of(esc, escalation_id, principal)
    async with esc.runtime.sessions() as session:
        found = await notes.for_case(session, escalation_id)
    return {"escalation_id": escalation_id, "notes": found}


@router.post("/cases/{escalation_id}/notes", status_code=201, summary="Add a note (operator)")
async def add_note(
    escalation_id: CaseId, body: NoteRequest, esc: EscalationDep, principal: Operator
) -> dict[str, Any]:
    text = body.note.strip()
    if not text:
        raise HTTPException(422, "note: write something first")
    if len(text) > NOTE_MAX:
        raise HTTPException(422, f"note: at most {NOTE_MAX} characters")
    clinic_id = await _clinic_of(esc, escalation_id, principal)
    now = esc.clock.now()
    async with esc.runtime.sessions() as session, session.begin():
        note_id = await notes.add(session, escalation_id, clinic_id, principal.subject, text, now)
        entry = AuditEntry("note_added", principal.subject, {"note": True, "note_id": note_id})
        await audit.add(session, clinic_id, escalation_id, now, [entry])
    return {
        "escalation_id": escalation_id,
        "note_id": note_id,
        "author": principal.subject,
        "at": now,
    }
