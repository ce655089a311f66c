"""Dependencies and small helpers shared by the escalation routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from pydantic import ValidationError

from services.escalation.workflow import Escalation
from shared.events.envelope import describe_validation_error


def _escalation(request: Request) -> Escalation:
    esc = request.app.state.runtime.extras.get("escalation")
    if not isinstance(esc, Escalation):
        raise HTTPException(503, "the escalation service is starting")
    return esc


EscalationDep = Annotated[Escalation, Depends(_escalation)]

NOT_FOUND = "no such case in the clinics this credential covers"
NOTE_MAX = 2000


def unprocessable(exc: ValidationError, prefix: str = "") -> HTTPException:
    """A 422 naming where each problem is, never the offending value."""
    return HTTPException(422, describe_validation_error(exc, prefix))
