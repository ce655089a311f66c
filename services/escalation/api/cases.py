"""The queue and what on-call staff do with a case.

Reading needs any role in the case's clinic; acknowledging, resolving and reassigning need
``operator``. A case outside the caller's clinics answers 404, exactly like a case that does
not exist, so ids cannot be probed across clinics.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, model_validator

from services.escalation import actions
from services.escalation.api.deps import NOT_FOUND, NOTE_MAX, EscalationDep, audit_case_patient
from services.escalation.domain import OPEN_STATES, Case, CaseConflict, CaseState
from services.escalation.repository import audit, cases, pages
from services.escalation.workflow import CaseNotFound, Escalation
from shared.audit import note_patients
from shared.auth import CurrentPrincipal, Operator, Principal, require_clinic
from shared.events.common import Id
from shared.events.escalations import Outcome, Severity

router = APIRouter(tags=["cases"], dependencies=[Depends(audit_case_patient)])
CaseId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^\S+$")]
_STATES = {
    "open": sorted(s.value for s in OPEN_STATES),
    "resolved": [CaseState.resolved.value],
    "all": [s.value for s in CaseState],
}


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    # Free text written by staff: stored and shown to staff, never logged or put in an event.
    # Its length is checked in the route so a refusal never echoes it.
    note: str | None = None
    resume_outreach: bool | None = None  # default by outcome (answered/no_action: yes)


class ReassignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    responder_id: Id | None = None
    rotation_id: Id | None = None

    @model_validator(mode="after")
    def _someone(self) -> ReassignRequest:
        if self.responder_id is None and self.rotation_id is None:
            raise ValueError("name a responder_id, a rotation_id, or both")
        return self


def _aged(esc: Escalation, row: dict[str, Any]) -> dict[str, Any]:
    age = esc.clock.now() - row["raised_at"]
    return {**row, "age_minutes": max(0, int(age.total_seconds() // 60))}


@router.get("/cases", summary="The queue: cases by severity, then age")
async def queue(
    request: Request,
    esc: EscalationDep,
    principal: CurrentPrincipal,
    clinic_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    state: Literal["open", "resolved", "all"] = "open",
    severity: Severity | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    scope = principal.clinics
    if clinic_id is not None:
        require_clinic(principal, clinic_id)
        scope = frozenset({clinic_id})
    async with esc.runtime.sessions() as session:
        rows = await cases.queue(
            session,
            scope,
            states=_STATES[state],
            severity=severity.value if severity else None,
            limit=limit,
        )
    note_patients(request, (str(r["patient_key"]) for r in rows))  # whose cases were listed
    return {"cases": [_aged(esc, r) for r in rows]}


async def _visible(esc: Escalation, escalation_id: str, principal: Principal) -> dict[str, Any]:
    async with esc.runtime.sessions() as session:
        row = await cases.detail(session, escalation_id)
        if row is None or not principal.may_access(row["clinic_id"]):
            raise HTTPException(404, NOT_FOUND)
        row["pages"] = await pages.for_case(session, escalation_id)
        row["audit"] = await audit.for_case(session, escalation_id)
    return _aged(esc, row)


@router.get("/cases/{escalation_id}", summary="One case with its pages and audit trail")
async def case_detail(
    escalation_id: CaseId, esc: EscalationDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return await _visible(esc, escalation_id, principal)


@router.get("/cases/{escalation_id}/audit", summary="Every action on the case, by whom")
async def case_audit(
    escalation_id: CaseId, esc: EscalationDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    row = await _visible(esc, escalation_id, principal)
    return {"escalation_id": escalation_id, "audit": row["audit"]}


async def _respond(esc: Escalation, principal: Principal, escalation_id: str, act: Any) -> Any:
    try:
        case: Case = await act
    except CaseNotFound:
        raise HTTPException(404, NOT_FOUND) from None
    except CaseConflict as exc:
        raise HTTPException(409, str(exc)) from None
    return await _visible(esc, case.escalation_id, principal)


@router.post("/cases/{escalation_id}/acknowledge", summary="Take ownership: stops re-paging")
async def acknowledge(
    escalation_id: CaseId, esc: EscalationDep, principal: Operator
) -> dict[str, Any]:
    act = actions.acknowledge(esc, escalation_id, principal)
    return await _respond(esc, principal, escalation_id, act)  # type: ignore[no-any-return]


@router.post("/cases/{escalation_id}/resolve", summary="Close the case with an outcome and note")
async def resolve(
    escalation_id: CaseId, body: ResolveRequest, esc: EscalationDep, principal: Operator
) -> dict[str, Any]:
    note = (body.note or "").strip() or None
    if note is not None and len(note) > NOTE_MAX:
        raise HTTPException(422, f"note: at most {NOTE_MAX} characters")
    act = actions.resolve(
        esc,
        escalation_id,
        principal,
        body.outcome,
        note=note,
        resume_outreach=body.resume_outreach,
    )
    return await _respond(esc, principal, escalation_id, act)  # type: ignore[no-any-return]


@router.post("/cases/{escalation_id}/reassign", summary="Page someone else now")
async def reassign(
    escalation_id: CaseId, body: ReassignRequest, esc: EscalationDep, principal: Operator
) -> dict[str, Any]:
    act = actions.reassign(
        esc,
        escalation_id,
        principal,
        responder_id=body.responder_id,
        rotation_id=body.rotation_id,
    )
    return await _respond(esc, principal, escalation_id, act)  # type: ignore[no-any-return]
