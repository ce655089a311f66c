"""Routes every service serves for operators: dead letters and parked timers.

Dead letters span clinics and topics, so they need an admin scoped to every clinic; parked
timers are this service's own (``/admin/timers``). Listings never carry message bytes or timer
payloads; ``GET /admin/dlq/{id}`` shows one dead letter's bytes, because deciding to replay it
needs them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from shared.auth import Admin, Principal
from shared.dlq import DeadLetter, DeadLetters, Filter
from shared.errors import error_responses
from shared.timers import ParkedTimer

router = APIRouter(prefix="/admin", tags=["admin"], responses=error_responses(401, 403, 404, 422))


class DeadLetterSummary(BaseModel):
    id: str
    dlq_topic: str
    at: str  # when it was dead-lettered (the broker's timestamp), ISO 8601
    source: str  # topic:partition:offset it came from
    reason: str
    error: str
    consumer: str
    key: str | None  # the patient_key: an opaque id
    bytes: int
    handled: str | None  # replayed | purged


class DeadLetterList(BaseModel):
    count: int
    dead_letters: list[DeadLetterSummary]


class DeadLetterShown(DeadLetterSummary):
    body: Any = Field(description="the message: JSON when it parses, else its text")


class Replayed(BaseModel):
    replayed: int
    ids: list[str]


class Purged(BaseModel):
    purged: int
    ids: list[str]


class ParkedTimers(BaseModel):
    service: str
    parked: list[ParkedTimer]


class Rearmed(BaseModel):
    rearmed: int


def _all_clinics(principal: Principal) -> None:
    if principal.clinics is not None:
        raise HTTPException(403, "these span clinics: an admin token for every clinic")


def _letters(request: Request) -> DeadLetters:
    runtime = request.app.state.runtime
    return DeadLetters(runtime.settings.kafka, runtime.engine)


class Selection(BaseModel):
    """Dead letters by id, or every one left that matches the filters."""

    ids: list[str] = Field(default_factory=list, max_length=10_000)
    topic: list[str] = Field(default_factory=list, max_length=20)
    reason: str | None = Field(default=None, max_length=200)
    since: datetime | None = None
    until: datetime | None = None


async def _chosen(letters: DeadLetters, body: Selection) -> list[DeadLetter]:
    if body.ids:
        try:
            return await letters.get(body.ids)
        except (KeyError, ValueError) as exc:
            raise HTTPException(404, str(exc.args[0]) if exc.args else "not found") from None
    if not (body.topic or body.reason or body.since or body.until):
        raise HTTPException(422, "give ids, or at least one of topic, reason, since, until")
    where = Filter(topics=body.topic, reason=body.reason, since=body.since, until=body.until)
    return await letters.find(where)


@router.get("/dlq", summary="Dead letters left to handle, oldest first (no bytes)")
async def list_dead_letters(
    request: Request,
    principal: Admin,
    topic: Annotated[list[str] | None, Query()] = None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_handled: bool = False,
) -> DeadLetterList:
    _all_clinics(principal)
    where = Filter(tuple(topic or ()), reason, since, until, include_handled)
    found = await _letters(request).find(where)
    rows = [DeadLetterSummary.model_validate(x.summary()) for x in found]
    return DeadLetterList(count=len(rows), dead_letters=rows)


@router.get("/dlq/{letter_id}", summary="One dead letter, with its bytes")
async def show_dead_letter(request: Request, principal: Admin, letter_id: str) -> DeadLetterShown:
    _all_clinics(principal)
    try:
        [letter] = await _letters(request).get([letter_id])
    except (KeyError, ValueError) as exc:
        raise HTTPException(404, str(exc.args[0]) if exc.args else "not found") from None
    try:
        body: Any = json.loads(letter.value)
    except (UnicodeDecodeError, ValueError):
        body = letter.value.decode("utf-8", errors="replace")
    return DeadLetterShown.model_validate({**letter.summary(), "body": body})


@router.post("/dlq/replay", summary="Send dead letters into their original topic")
async def replay_dead_letters(request: Request, principal: Admin, body: Selection) -> Replayed:
    _all_clinics(principal)
    letters = _letters(request)
    chosen = await _chosen(letters, body)
    count = await letters.replay(chosen, f"staff:{principal.subject}")
    return Replayed(replayed=count, ids=[x.id for x in chosen])


@router.post("/dlq/purge", summary="Mark dead letters as handled (kept until retention)")
async def purge_dead_letters(request: Request, principal: Admin, body: Selection) -> Purged:
    _all_clinics(principal)
    letters = _letters(request)
    chosen = await _chosen(letters, body)
    count = await letters.purge(chosen, f"staff:{principal.subject}")
    return Purged(purged=count, ids=[x.id for x in chosen])


@router.get("/timers", summary="This service's parked timers (failed too often), with why")
async def parked_timers(request: Request, principal: Admin) -> ParkedTimers:
    _all_clinics(principal)  # a timer's key may name any clinic's patient or sequence
    runtime = request.app.state.runtime
    parked = await runtime.timers.parked(runtime.engine)
    return ParkedTimers(
        service=runtime.service,
        parked=list(parked),
    )


@router.post("/timers/{timer_id}/rearm", summary="Fire a parked timer again now")
async def rearm_timer(request: Request, principal: Admin, timer_id: int) -> Rearmed:
    _all_clinics(principal)
    runtime = request.app.state.runtime
    if not await runtime.timers.rearm(runtime.engine, timer_id):
        raise HTTPException(404, f"no parked timer {timer_id} in {runtime.service}")
    return Rearmed(rearmed=timer_id)
