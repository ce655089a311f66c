"""``POST /hl7v2``: one or many HL7 v2 messages over HTTP (CR, LF or CRLF between segments).

The body is accepted whole or refused whole (like a Bundle); each message keeps its own
identity (MSH-3, MSH-4, MSH-10) for de-duplication. A caller that accepts
``x-application/hl7-v2+er7`` gets the acknowledgements (one ACK or NAK per message) instead of
JSON, always with status 200 as HL7 over HTTP expects; otherwise problems come as JSON with
``loc`` naming the message, segment and field (``messages[1].PID-3``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from services.ingest import submissions
from services.ingest.api.common import (
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
from services.ingest.domain import Problem, Refused
from services.ingest.handlers import Outcome
from services.ingest.hl7v2.ack import build_ack
from shared.auth import EhrWriter

router = APIRouter(tags=["HL7 v2"])
ER7 = "x-application/hl7-v2+er7"
_EXAMPLE = (
    "MSH|^~\\&|EHR|DERM|REVISIT|REVISIT|20261124140000-0500||SIU^S15^SIU_S12|M-1001|P|2.5.1\r"
    "SCH||A-9||||PAT^Patient request|||30|min|^^30^20261128100000-0500||||||||||||||Cancelled\r"
    "PID|1||P-1^^^DERM^MR||Doe^Ana||||||||(512)555-0101^PRN^CP\r"
)
_OK_AGAIN: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "all seen before (JSON), or the ACKs when HL7 v2 is accepted",
        "content": {
            "application/json": {"schema": Accepted.model_json_schema()},
            ER7: {"schema": {"type": "string"}},
        },
    }
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/plain": {"schema": {"type": "string"}, "example": _EXAMPLE},
            ER7: {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/hl7v2",
    status_code=202,
    summary="Push HL7 v2 messages (SIU S12-S17, S26; ADT A03, A04, A08, A28, A31; DFT P03)",
    response_model=Accepted,
    responses=_OK_AGAIN | INPUT_RESPONSES,
    openapi_extra=_BODY,
)
async def post_hl7v2(
    request: Request,
    principal: EhrWriter,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    clinic_id: str | None = None,
) -> Any:
    er7 = ER7 in request.headers.get("accept", "")
    read = await read_submission(request, principal, clinic_id, submissions.MAX_BODY_BYTES)
    if isinstance(read, JSONResponse):
        return read
    clinic, raw = read
    runtime, ingestion = runtime_of(request), ingest_of(request)
    ctx = ingestion.context(runtime.clock.now(), clinic)
    try:
        subs = submissions.hl7_body(raw, clinic, idempotency_key, ctx, "hl7v2")
    except Refused as exc:
        if er7:
            return PlainTextResponse(build_ack(None, "AR", exc.problems), media_type=ER7)
        return problem_response(400, exc.problems)
    outcomes = await submit(ingestion, subs, request)
    if er7:
        texts = [s.raw.decode("utf-8", "replace") for s in subs]
        return PlainTextResponse(_acks(texts, outcomes), media_type=ER7)
    if not all(o.ok for o in outcomes):
        return problem_response(refusal_status(outcomes), _located(outcomes))
    return accepted_response(outcomes)


def _located(outcomes: list[Outcome]) -> list[Problem]:
    many = len(outcomes) > 1
    return [
        Problem(f"messages[{index}].{p.loc}" if many else p.loc, p.msg, p.code)
        for index, outcome in enumerate(outcomes)
        for p in outcome.problems
    ]


def _acks(texts: list[str], outcomes: list[Outcome]) -> str:
    everything_ok = all(o.ok for o in outcomes)
    out = []
    for text, outcome in zip(texts, outcomes, strict=True):
        if outcome.ok and not everything_ok:
            # Accepted on its own, but the body is all or nothing: nothing of it was kept.
            held = Problem("MSH-10", "not accepted: another message in the body was refused", "207")
            out.append(build_ack(text, "AE", [held]))
        else:
            out.append(build_ack(text, outcome.hl7_code, outcome.problems))
    return "".join(out)
