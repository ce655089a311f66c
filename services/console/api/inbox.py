"""The shared inbox: conversations needing a person, one conversation with the patient's words
and the system's reading, and what staff do: reply in their own words (the messenger checks
consent, opt-out and quiet hours, and records who wrote it), mark handled, assign."""

from __future__ import annotations

import re
import secrets
from typing import Annotated, Literal

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
    patient_of,
    render,
)
from services.console.api.gather import parts
from services.console.domain.inbox import inbox_items, reading, refusal_words
from services.console.domain.staff import Act
from services.console.repository.sessions import Session

router = APIRouter()
Ref = Annotated[str, Path(min_length=8, max_length=400, pattern=r"^[A-Za-z0-9_-]+$")]
STAFF_ID = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(
    request: Request,
    console: ConsoleDep,
    session: SignedIn,
    clinic: Annotated[str | None, Query(max_length=64)] = None,
    view: Literal["waiting", "mine", "handled"] = "waiting",
) -> Response:
    clinic_id = clinic_for(console, session.staff, clinic)
    rows = await console.apis.messenger.inbox(session.token, clinic_id, view)
    return render(
        request,
        console,
        "inbox.html",
        session,
        clinic=clinic_id,
        view=view,
        items=inbox_items(rows) if view != "handled" else [],
        handled=rows if view == "handled" else [],
    )


async def _conversation(
    request: Request,
    console: Console,
    session: Session,
    ref: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    patient_key = patient_of(console, ref)
    apis, token = console.apis, session.token
    # One round; the conversation is essential (outside the person's clinics it fails the page).
    found, contact, outreach = await parts(
        apis.messenger.inbox_conversation(token, patient_key),
        apis.messenger.contact(token, patient_key),
        apis.sequencer.outreach(token, patient_key),
    )
    conversation = found.essential()
    for message in conversation["messages"]:
        if message["direction"] == "inbound":
            message["reading"] = reading(message.get("reading"))
    clinic = patient_key.split(":", 1)[0]
    return render(
        request,
        console,
        "conversation.html",
        session,
        status=status,
        patient_ref=ref,
        clinic=clinic,
        conversation=conversation,
        contact=contact,
        outreach=outreach,
        reply_key=secrets.token_urlsafe(16),
        may_reply=session.staff.may_in(Act.reply, clinic),
        error=error,
        done=None if error else request.query_params.get("done"),
    )


@router.get("/inbox/{ref}", response_class=HTMLResponse)
async def conversation_page(
    request: Request, console: ConsoleDep, session: SignedIn, ref: Ref
) -> Response:
    return await _conversation(request, console, session, ref)


@router.post("/inbox/{ref}/reply")
async def reply(request: Request, console: ConsoleDep, session: CheckedForm, ref: Ref) -> Response:
    patient_key = patient_of(console, ref)
    form = await form_of(request)
    try:
        await console.apis.messenger.reply(
            session.token,
            patient_key,
            form.get("body", ""),
            form.get("reply_key", "") or secrets.token_urlsafe(16),
            mark_handled=form.get("mark_handled") == "yes",
        )
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        return await _conversation(
            request, console, session, ref, f"Not sent: {refusal_words(exc.detail)}.", exc.status
        )
    return back(f"/inbox/{ref}", "sent")


@router.post("/inbox/{ref}/handled")
async def handled(
    request: Request, console: ConsoleDep, session: CheckedForm, ref: Ref
) -> Response:
    patient_key = patient_of(console, ref)
    await console.apis.messenger.mark_handled(session.token, patient_key)
    return back("/inbox", "handled", clinic=patient_key.split(":", 1)[0])


@router.post("/inbox/{ref}/assign")
async def assign(request: Request, console: ConsoleDep, session: CheckedForm, ref: Ref) -> Response:
    patient_key = patient_of(console, ref)
    to = (await form_of(request)).get("assigned_to", "").strip()
    if to and not STAFF_ID.fullmatch(to):
        error = "Assign to: a staff id of 1-64 letters, digits or . _ @ -"
        return await _conversation(request, console, session, ref, error, 422)
    await console.apis.messenger.assign(session.token, patient_key, to or None)
    return back(f"/inbox/{ref}", "assigned")
