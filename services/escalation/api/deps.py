"""Dependencies and small helpers shared by the escalation routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException
from pydantic import ValidationError

from services.escalation.context import EscalationContext
from services.escalation.workflow import Escalation
from shared.events.envelope import describe_validation_error
from shared.runtime import context_dependency

_context = context_dependency(EscalationContext)


def _escalation(context: Annotated[EscalationContext, Depends(_context)]) -> Escalation:
    return context.escalation


EscalationDep = Annotated[Escalation, Depends(_escalation)]

NOT_FOUND = "no such case in the clinics this credential covers"
NOTE_MAX = 2000


def unprocessable(exc: ValidationError, prefix: str = "") -> HTTPException:
    """A 422 naming where each problem is, never the offending value."""
    return HTTPException(422, describe_validation_error(exc, prefix))
