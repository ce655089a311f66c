"""``POST /events``: the v1 EHR payloads directly, for integration engines."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from services.ingest import submissions
from services.ingest.api.common import (
    ACCEPTED_AGAIN,
    INPUT_RESPONSES,
    Accepted,
    accepted_response,
    ingest_of,
    problem_response,
    read_submission,
    refusal_status,
    runtime_of,
    submit,
)
from services.ingest.domain import Refused
from shared.auth import EhrWriter

router = APIRouter(tags=["native JSON"])
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": '{"events": [{"type", "patient_id", "payload"}]} or one',
                },
                "example": {
                    "events": [
                        {
                            "type": "AppointmentCancelled",
                            "patient_id": "p-1",
                            "payload": {
                                "source": {
                                    "system": "json",
                                    "record_id": "a-9",
                                    "source_updated_at": "2026-11-24T14:00:00Z",
                                },
                                "appointment_id": "a-9",
                                "start": "2026-11-28T15:00:00Z",
                                "service_line": "skin_check",
                                "provider_id": "dr-1",
                                "location_id": "loc-1",
                                "cancelled_by": "patient",
                            },
                        }
                    ]
                },
            }
        },
    }
}


@router.post(
    "/events",
    status_code=202,
    summary="Push native v1 EHR events (for integration engines)",
    response_model=Accepted,
    responses=ACCEPTED_AGAIN | INPUT_RESPONSES,
    openapi_extra=_BODY,
)
async def post_events(
    request: Request,
    principal: EhrWriter,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    clinic_id: str | None = None,
) -> Any:
    """Body: ``{"events": [{"type", "patient_id", "occurred_at", "payload"}]}`` or one event.

    The clinic is the API key's own; staff tokens name it with ``?clinic_id=``. A submission is
    accepted whole or refused whole. The same message (same ``Idempotency-Key``, or the same
    bytes) sent again is answered with the first submission's event ids and publishes nothing.
    """
    read = await read_submission(request, principal, clinic_id, submissions.MAX_BODY_BYTES)
    if isinstance(read, JSONResponse):
        return read
    clinic, raw = read
    runtime, ingestion = runtime_of(request), ingest_of(request)
    ctx = ingestion.context(runtime.clock.now(), clinic)
    try:
        submission = submissions.native(raw, clinic, idempotency_key, ctx)
    except Refused as exc:
        return problem_response(400, exc.problems)
    outcomes = await submit(ingestion, [submission], request)
    if not all(o.ok for o in outcomes):
        return problem_response(refusal_status(outcomes), [p for o in outcomes for p in o.problems])
    return accepted_response(outcomes)
