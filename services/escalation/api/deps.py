"""Dependencies and small helpers shared by the escalation routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from pydantic import ValidationError

from services.escalation.context import EscalationContext
from services.escalation.repository import cases
from services.escalation.workflow import Escalation
from shared.audit import note_patients
from shared.auth import CurrentPrincipal
from shared.events.envelope import describe_validation_error
from shared.runtime import context_dependency

_context = context_dependency(EscalationContext)


def _escalation(context: Annotated[EscalationContext, Depends(_context)]) -> Escalation:
    return context.escalation


EscalationDep = Annotated[Escalation, Depends(_escalation)]


async def audit_case_patient(request: Request, _caller: CurrentPrincipal) -> None:
    """Name the case's patient in the audit log (the path names only the case).

    It needs a credential first, so an anonymous probe costs no lookup.
    """
    escalation_id = request.path_params.get("escalation_id")
    runtime = getattr(request.app.state, "runtime", None)
    if not escalation_id or runtime is None:
        return
    async with runtime.sessions() as session:
        patient_key = await cases.patient_of(session, str(escalation_id))
    if patient_key:
        note_patients(request, [patient_key])


NOT_FOUND = "no such case in the clinics this credential covers"
NOTE_MAX = 2000


def unprocessable(exc: ValidationError, prefix: str = "") -> HTTPException:
    """A 422 naming where each problem is, never the offending value."""
    return HTTPException(422, describe_validation_error(exc, prefix))
