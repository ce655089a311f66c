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

_ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, malformed, expired or revoked credential"},
    403: {"description": "not an admin, or an admin of only some clinics"},
    404: {"description": "no such dead letter or parked timer"},
    422: {"description": "invalid request: names what is wrong"},
}
router = APIRouter(prefix="/admin", tags=["admin"], responses=_ANSWERS)


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
) -> dict[str, Any]:
    _all_clinics(principal)
    where = Filter(tuple(topic or ()), reason, since, until, include_handled)
    found = await _letters(request).find(where)
    return {"count": len(found), "dead_letters": [x.summary() for x in found]}


@router.get("/dlq/{letter_id}", summary="One dead letter, with its bytes")
async def show_dead_letter(request: Request, principal: Admin, letter_id: str) -> dict[str, Any]:
    _all_clinics(principal)
    try:
        [letter] = await _letters(request).get([letter_id])
    except (KeyError, ValueError) as exc:
        raise HTTPException(404, str(exc.args[0]) if exc.args else "not found") from None
    try:
        body: Any = json.loads(letter.value)
    except (UnicodeDecodeError, ValueError):
        body = letter.value.decode("utf-8", errors="replace")
    return {**letter.summary(), "body": body}


@router.post("/dlq/replay", summary="Send dead letters into their original topic")
async def replay_dead_letters(
    request: Request, principal: Admin, body: Selection
) -> dict[str, Any]:
    _all_clinics(principal)
    letters = _letters(request)
    chosen = await _chosen(letters, body)
    count = await letters.replay(chosen, f"staff:{principal.subject}")
    return {"replayed": count, "ids": [x.id for x in chosen]}


@router.post("/dlq/purge", summary="Mark dead letters as handled (kept until retention)")
async def purge_dead_letters(request: Request, principal: Admin, body: Selection) -> dict[str, Any]:
    _all_clinics(principal)
    letters = _letters(request)
    chosen = await _chosen(letters, body)
    count = await letters.purge(chosen, f"staff:{principal.subject}")
    return {"purged": count, "ids": [x.id for x in chosen]}


@router.get("/timers", summary="This service's parked timers (failed too often), with why")
async def parked_timers(request: Request, principal: Admin) -> dict[str, Any]:
    _all_clinics(principal)  # a timer's key may name any clinic's patient or sequence
    runtime = request.app.state.runtime
    parked = await runtime.timers.parked(runtime.engine)
    return {
        "service": runtime.service,
        "parked": [
            {
                "id": t.id,
                "kind": t.kind,
                "key": t.key,
                "due_at": t.due_at,
                "attempts": t.attempts,
                "last_error": t.last_error,
                "parked_at": t.parked_at,
            }
            for t in parked
        ],
    }


@router.post("/timers/{timer_id}/rearm", summary="Fire a parked timer again now")
async def rearm_timer(request: Request, principal: Admin, timer_id: int) -> dict[str, Any]:
    _all_clinics(principal)
    runtime = request.app.state.runtime
    if not await runtime.timers.rearm(runtime.engine, timer_id):
        raise HTTPException(404, f"no parked timer {timer_id} in {runtime.service}")
    return {"rearmed": timer_id}
