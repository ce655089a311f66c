"""The escalation queue (live), a case with its conversation and the patient's summary beside
it, and what staff do with it: take it, add a note, resolve it with an outcome."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.console.adapters.base import ApiError
from services.console.api.deps import (
    CheckedForm,
    Console,
    ConsoleDep,
    SignedIn,
    back,
    clinic_for,
    form_of,
    render,
)
from services.console.api.gather import parts
from services.console.domain.inbox import reading
from services.console.domain.queue import QueueItem, order_queue, red_flags_waiting, sla_clock
from services.console.domain.staff import Act
from services.console.domain.words import OUTCOMES, STATES, say
from services.console.repository.sessions import Session
from shared.events.escalations import Outcome

router = APIRouter()
CaseId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
ClinicQuery = Annotated[str | None, Query(alias="clinic", max_length=64)]


@router.get("/", include_in_schema=False)
async def home(session: SignedIn) -> Response:
    return back("/escalations")


async def _queue(console: Console, session: Session, clinic: str) -> list[QueueItem]:
    cases = await console.apis.escalation.queue(session.token, clinic)
    return order_queue(cases)


@router.get("/escalations", response_class=HTMLResponse)
async def queue_page(
    request: Request, console: ConsoleDep, session: SignedIn, clinic: ClinicQuery = None
) -> Response:
    clinic_id = clinic_for(console, session.staff, clinic)
    items = await _queue(console, session, clinic_id)
    return render(
        request,
        console,
        "queue.html",
        session,
        clinic=clinic_id,
        items=items,
        red_flags=red_flags_waiting(items),
        refresh=console.settings.refresh_seconds,
        done=request.query_params.get("done"),
    )


@router.get("/escalations/rows", response_class=HTMLResponse)
async def queue_rows(
    request: Request, console: ConsoleDep, session: SignedIn, clinic: ClinicQuery = None
) -> Response:
    """The queue's rows alone, polled by the page; 304 when nothing changed."""
    clinic_id = clinic_for(console, session.staff, clinic)
    items = await _queue(console, session, clinic_id)
    page = render(
        request,
        console,
        "queue_rows.html",
        session,
        items=items,
        red_flags=red_flags_waiting(items),
    )
    etag = '"' + hashlib.sha256(page.body).hexdigest()[:32] + '"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-store"})
    page.headers["ETag"] = etag
    page.headers["X-Red-Flags"] = str(red_flags_waiting(items))
    return page


@router.get("/cases/{escalation_id}", response_class=HTMLResponse)
async def case_page(
    request: Request, console: ConsoleDep, session: SignedIn, escalation_id: CaseId
) -> Response:
    return await _case_view(request, console, session, escalation_id)


async def _case_view(
    request: Request,
    console: Console,
    session: Session,
    escalation_id: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    apis, token = console.apis, session.token
    case, notes = await asyncio.gather(
        apis.escalation.case(token, escalation_id), apis.escalation.notes(token, escalation_id)
    )
    patient_key = case["patient_key"]
    # The summary beside the case is what a responder needs at once; the story has the rest.
    conversation, contact, outreach = await parts(
        apis.messenger.conversation(token, patient_key),
        apis.messenger.contact(token, patient_key),
        apis.sequencer.outreach(token, patient_key),
    )
    for message in conversation.value or []:
        if message.get("direction") == "inbound":
            message["reading"] = reading(message)
    return render(
        request,
        console,
        "case.html",
        session,
        status=status,
        case=case,
        kind=case["case_type"],
        sla=sla_clock(case),
        state_label=say(STATES, case["state"]),
        notes=notes,
        conversation=conversation,
        contact=contact,
        outreach=outreach,
        outcomes=[(o.value, say(OUTCOMES, o.value)) for o in Outcome],
        may_act=session.staff.may_in(Act.resolve, case["clinic_id"]),
        done=None if error else request.query_params.get("done"),
        error=error,
    )


async def _act_or_show(
    request: Request, console: ConsoleDep, session: CheckedForm, escalation_id: str, act: str
) -> Response:
    form = await form_of(request)
    apis, token = console.apis.escalation, session.token
    try:
        if act == "acknowledge":
            await apis.acknowledge(token, escalation_id)
        elif act == "note":
            await apis.add_note(token, escalation_id, form.get("note", ""))
        else:
            resume = {"yes": True, "no": False}.get(form.get("resume_outreach", ""))
            await apis.resolve(
                token, escalation_id, form.get("outcome", ""), form.get("note", ""), resume
            )
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        return await _case_view(request, console, session, escalation_id, exc.words, 409)
    return back(f"/cases/{escalation_id}", done={"note": "noted"}.get(act, act + "d"))


@router.post("/cases/{escalation_id}/acknowledge")
async def acknowledge(
    request: Request, console: ConsoleDep, session: CheckedForm, escalation_id: CaseId
) -> Response:
    return await _act_or_show(request, console, session, escalation_id, "acknowledge")


@router.post("/cases/{escalation_id}/notes")
async def add_note(
    request: Request, console: ConsoleDep, session: CheckedForm, escalation_id: CaseId
) -> Response:
    return await _act_or_show(request, console, session, escalation_id, "note")


@router.post("/cases/{escalation_id}/resolve")
async def resolve(
    request: Request, console: ConsoleDep, session: CheckedForm, escalation_id: CaseId
) -> Response:
    return await _act_or_show(request, console, session, escalation_id, "resolve")
