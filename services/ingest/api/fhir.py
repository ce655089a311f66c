"""``POST /fhir/r4`` (a resource or a Bundle) and ``PUT /fhir/r4/{type}/{id}``.

A Bundle (transaction, batch, collection or message) is accepted whole or refused whole, every
problem named by its path (``Bundle.entry[3].Appointment.participant``). Errors are the ingest
``{"detail": [{"loc", "msg"}]}`` shape, or an OperationOutcome when the caller accepts
``application/fhir+json``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import JSONResponse

from services.ingest import submissions
from services.ingest.api.common import (
    ACCEPTED_AGAIN,
    FHIR_JSON,
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

router = APIRouter(prefix="/fhir/r4", tags=["FHIR R4"])
_SCHEMA = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}},
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            FHIR_JSON: {"schema": _SCHEMA},
            "application/json": {
                "schema": _SCHEMA,
                "example": {
                    "resourceType": "Appointment",
                    "id": "a-9",
                    "meta": {"versionId": "3", "lastUpdated": "2026-11-24T14:00:00Z"},
                    "status": "booked",
                    "start": "2026-11-28T15:00:00Z",
                    "end": "2026-11-28T15:30:00Z",
                    "participant": [
                        {"actor": {"reference": "Patient/p-1"}, "status": "accepted"},
                        {"actor": {"reference": "Practitioner/dr-1"}, "status": "accepted"},
                    ],
                },
            },
        },
    }
}
_RESPONSES = ACCEPTED_AGAIN | INPUT_RESPONSES
_KIND = Annotated[str, Path(pattern=r"^[A-Z][A-Za-z]{1,63}$")]
_ID = Annotated[str, Path(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]


@router.post(
    "",
    status_code=202,
    summary="Push one FHIR R4 resource or a Bundle",
    response_model=Accepted,
    responses=_RESPONSES,
    openapi_extra=_BODY,
)
async def post_fhir(
    request: Request,
    principal: EhrWriter,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    clinic_id: str | None = None,
) -> Any:
    """The same Bundle (id and meta.versionId, or the same content) or resource version
    (id and meta.versionId) sent again publishes nothing and answers with the first event ids."""
    return await _ingest(request, principal, idempotency_key, clinic_id, None)


@router.put(
    "/{kind}/{resource_id}",
    status_code=202,
    summary="Create or update one FHIR R4 resource by its id",
    response_model=Accepted,
    responses=_RESPONSES,
    openapi_extra=_BODY,
)
async def put_fhir(
    request: Request,
    principal: EhrWriter,
    kind: _KIND,
    resource_id: _ID,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    clinic_id: str | None = None,
) -> Any:
    return await _ingest(request, principal, idempotency_key, clinic_id, (kind, resource_id))


async def _ingest(
    request: Request,
    principal: Any,
    idempotency_key: str | None,
    clinic_id: str | None,
    path: tuple[str, str] | None,
) -> Any:
    as_fhir = FHIR_JSON in request.headers.get("accept", "")
    read = await read_submission(request, principal, clinic_id, submissions.MAX_BODY_BYTES)
    if isinstance(read, JSONResponse):
        return read
    clinic, raw = read
    runtime, ingestion = runtime_of(request), ingest_of(request)
    ctx = ingestion.context(runtime.clock.now(), clinic)
    try:
        submission = submissions.fhir(raw, clinic, idempotency_key, ctx, path)
    except Refused as exc:
        return problem_response(400, exc.problems, fhir=as_fhir)
    outcomes = await submit(ingestion, [submission], request)
    if not all(o.ok for o in outcomes):
        problems = [p for o in outcomes for p in o.problems]
        return problem_response(refusal_status(outcomes), problems, fhir=as_fhir)
    return accepted_response(outcomes)
