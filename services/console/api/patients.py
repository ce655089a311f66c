"""A patient's story on one page (the URL carries an opaque reference, never the patient key):
why they were messaged, each step's words as sent, replies, consent, cases, the care journey;
and pausing or stopping their outreach with a reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from services.console.adapters.base import ApiError
from services.console.api.deps import (
    CheckedForm,
    Console,
    ConsoleDep,
    SignedIn,
    back,
    form_of,
    patient_of,
    render,
)
from services.console.api.gather import parts
from services.console.domain.staff import Act
from services.console.domain.story import build_story
from services.console.domain.words import ACTION_REASONS, CASE_TYPES, OUTCOMES, say
from services.console.repository.sessions import Session

router = APIRouter()
Ref = Annotated[str, Path(min_length=8, max_length=400, pattern=r"^[A-Za-z0-9_-]+$")]


async def _story(
    request: Request,
    console: Console,
    session: Session,
    ref: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    patient_key = patient_of(console, ref)
    clinic = patient_key.split(":", 1)[0]
    apis, token = console.apis, session.token
    # One round: every service checks the person's clinics itself, and the outreach is the
    # essential part (a patient outside them fails it, and so the page: 403/404).
    outreach_part, conversation, explain, journey, consent, cases, actions, contact = await parts(
        apis.sequencer.outreach(token, patient_key),
        apis.messenger.conversation(token, patient_key),
        apis.segmenter.explain(token, patient_key),
        apis.segmenter.journey(token, patient_key),
        apis.messenger.consent(token, patient_key),
        apis.escalation.patient_cases(token, patient_key),
        apis.sequencer.actions(token, patient_key),
        apis.messenger.contact(token, patient_key),
    )
    outreach = outreach_part.essential()
    story = build_story(outreach, conversation.value or [], explain.value or {})
    return render(
        request,
        console,
        "story.html",
        session,
        status=status,
        patient_ref=ref,
        clinic=clinic,
        story=story,
        parts={
            "conversation": conversation,
            "explain": explain,
            "journey": journey,
            "consent": consent,
            "cases": cases,
            "actions": actions,
            "contact": contact,
        },
        journey=journey.value or {},
        consent=consent.value or [],
        cases=cases.value or [],
        actions=actions.value or [],
        contact=contact.value or {},
        reasons=ACTION_REASONS,
        case_types=CASE_TYPES,
        outcomes=OUTCOMES,
        say=say,
        may_act=session.staff.may_in(Act.pause_outreach, clinic),
        error=error,
        done=None if error else request.query_params.get("done"),
    )


@router.get("/patients/{ref}", response_class=HTMLResponse)
async def story_page(
    request: Request, console: ConsoleDep, session: SignedIn, ref: Ref
) -> Response:
    return await _story(request, console, session, ref)


@router.post("/patients/{ref}/outreach")
async def change_outreach(
    request: Request, console: ConsoleDep, session: CheckedForm, ref: Ref
) -> Response:
    patient_key = patient_of(console, ref)
    form = await form_of(request)
    action = form.get("action", "")
    if action not in ("pause", "resume", "stop"):
        return await _story(request, console, session, ref, "Choose pause, resume or stop.", 422)
    if form.get("reason", "") not in ACTION_REASONS:
        return await _story(request, console, session, ref, "Choose a reason from the list.", 422)
    try:
        await console.apis.sequencer.act(
            session.token, patient_key, action, form["reason"], form.get("note", "")
        )
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        return await _story(request, console, session, ref, exc.words, exc.status)
    return back(f"/patients/{ref}", {"pause": "paused", "resume": "resumed"}.get(action, "stopped"))
