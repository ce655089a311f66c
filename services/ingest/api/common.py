"""What every ingest route shares: the clinic a caller acts for, answers, problem formats."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.ingest.batching import Unavailable
from services.ingest.domain import Problem
from services.ingest.handlers import Outcome
from services.ingest.ingestion import Ingestion, ingestion_of
from services.ingest.submissions import Submission
from shared.audit import note_patients
from shared.auth import AuthError, Principal, require_clinic
from shared.runtime import Runtime
from shared.telemetry import current_trace_id

FHIR_JSON = "application/fhir+json"


class ProblemItem(BaseModel):
    loc: str
    msg: str


class Problems(BaseModel):
    """Every problem found, each naming where it is (never the offending value)."""

    detail: list[ProblemItem]


class Message(BaseModel):
    detail: str


class Accepted(BaseModel):
    accepted: int
    event_ids: list[str]
    duplicate: bool
    trace_id: str | None = None
    notes: list[ProblemItem] = []


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Message, "description": "missing, malformed, expired or revoked credential"},
    403: {"model": Message, "description": "role too low, or clinic not in the credential's scope"},
}
INPUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    400: {"model": Problems, "description": "not readable at all (not JSON, not HL7)"},
    409: {"model": Problems, "description": "the message's identity was used for other content"},
    413: {"model": Problems, "description": "body too large"},
    422: {"model": Problems, "description": "refused whole: names the path of every problem"},
}


ACCEPTED_AGAIN: dict[int | str, dict[str, Any]] = {
    200: {"model": Accepted, "description": "the same message again: nothing published"}
}


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def ingest_of(request: Request) -> Ingestion:
    return ingestion_of(runtime_of(request))


async def submit(
    ingestion: Ingestion, submissions: Sequence[Submission], request: Request
) -> list[Outcome]:
    """One body, all or nothing, committed with whatever else arrives meanwhile."""
    # The audit log records which patients a message wrote about (the path names none).
    note_patients(
        request,
        (
            f"{sub.clinic_id}:{draft.patient_id}"
            for sub in submissions
            if sub.mapped is not None
            for draft in sub.mapped.drafts
        ),
    )
    try:
        return await ingestion.batcher.submit(submissions, all_or_nothing=True)
    except Unavailable:
        raise HTTPException(503, "temporarily unavailable: send again") from None


def clinic_of(scope: frozenset[str] | None, requested: str | None) -> str:
    """The clinic named by ``?clinic_id=``, else the credential's only clinic."""
    if requested:
        return requested
    if scope is not None and len(scope) == 1:
        return next(iter(scope))
    raise AuthError(422, "name the clinic with ?clinic_id= (this credential covers several)")


def problem_response(
    status: int, problems: Sequence[Problem], *, fhir: bool = False
) -> JSONResponse:
    if fhir:
        return JSONResponse(
            status_code=status,
            media_type=FHIR_JSON,
            content={
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "error",
                        "code": "invalid",
                        "diagnostics": p.msg,
                        "expression": [p.loc],
                    }
                    for p in problems
                ],
            },
        )
    return JSONResponse(
        status_code=status,
        content={"detail": [{"loc": p.loc, "msg": p.msg} for p in problems]},
    )


def refusal_status(outcomes: Sequence[Outcome]) -> int:
    return 409 if any(o.status == "conflict" for o in outcomes) else 422


def accepted_response(outcomes: Sequence[Outcome]) -> JSONResponse:
    """202 when something new was accepted, 200 when all of it had been accepted before."""
    duplicate = all(o.status == "duplicate" for o in outcomes)
    ids = [i for o in outcomes for i in o.event_ids]
    notes = [{"loc": n.loc, "msg": n.msg} for o in outcomes for n in o.notes]
    return JSONResponse(
        status_code=200 if duplicate else 202,
        content={
            "accepted": len(ids),
            "event_ids": ids,
            "duplicate": duplicate,
            "trace_id": current_trace_id(),
            "notes": notes[:100],
        },
    )


def too_large(raw: bytes, limit: int) -> JSONResponse | None:
    if len(raw) > limit:
        return problem_response(413, [Problem("(body)", f"larger than {limit} bytes")])
    return None


async def read_submission(
    request: Request, principal: Principal, clinic_id: str | None, limit: int
) -> tuple[str, bytes] | JSONResponse:
    """What every push route does first: the clinic the caller may write for, and the body
    (or the 413 that refuses it). A clinic outside the credential's scope raises 403."""
    clinic = clinic_of(principal.clinics, clinic_id)
    require_clinic(principal, clinic)
    raw = await request.body()
    return too_large(raw, limit) or (clinic, raw)


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422s in the ingest format: ``loc`` as a dotted path, no input echoed."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse(
        status_code=422,
        content={
            "detail": [
                {"loc": ".".join(str(p) for p in err.get("loc", ())), "msg": err.get("msg", "")}
                for err in errors[:20]
            ]
        },
    )
