"""Ingest's HTTP API: what EHR integrations push. FHIR and HL7 v2 routes join in later."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from services.ingest import handlers
from services.ingest.domain import Problem, Refused
from shared.auth import AuthError, Operator, require_clinic
from shared.runtime import Runtime
from shared.telemetry import current_trace_id

router = APIRouter(tags=["native JSON"])
MAX_BODY_BYTES = 5 * 1024 * 1024


def problem_response(status: int, problems: list[Problem]) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"detail": [{"loc": p.loc, "msg": p.msg} for p in problems]},
    )


@router.post(
    "/events",
    status_code=202,
    summary="Push native v1 EHR events (for integration engines)",
    responses={422: {"description": "names the path of every problem"}},
)
async def post_events(
    request: Request,
    principal: Operator,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    clinic_id: str | None = None,
) -> Any:
    """Body: ``{"events": [{"type", "patient_id", "occurred_at", "payload"}]}`` or one event.

    The clinic is the API key's own; staff tokens name it with ``?clinic_id=``. A submission is
    accepted whole or refused whole. The same message (same ``Idempotency-Key``, or the same
    bytes) sent again is answered with the first submission's event ids and publishes nothing.
    """
    clinic = _clinic_of(principal.clinics, clinic_id)
    require_clinic(principal, clinic)
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return problem_response(413, [Problem("(body)", f"larger than {MAX_BODY_BYTES} bytes")])
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f"line {getattr(exc, 'lineno', '?')} column {getattr(exc, 'colno', '?')}"
        return problem_response(400, [Problem("(body)", f"not valid JSON at {where}")])
    runtime: Runtime = request.app.state.runtime
    try:
        accepted = await handlers.accept_native(
            runtime, clinic_id=clinic, raw=raw, doc=doc, idempotency_key=idempotency_key
        )
    except Refused as exc:
        return problem_response(422, exc.problems)
    return JSONResponse(
        status_code=200 if accepted.duplicate else 202,
        content={
            "accepted": len(accepted.event_ids),
            "event_ids": accepted.event_ids,
            "duplicate": accepted.duplicate,
            "trace_id": current_trace_id(),
        },
    )


def _clinic_of(scope: frozenset[str] | None, requested: str | None) -> str:
    if requested:
        return requested
    if scope is not None and len(scope) == 1:
        return next(iter(scope))
    raise AuthError(422, "name the clinic with ?clinic_id= (this credential covers several)")
