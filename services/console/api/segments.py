"""Segments and their parameters per clinic (admins edit, with validation), and who would be
messaged next with the words they would get."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
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
from services.console.domain.params_form import form_fields, read_form
from services.console.domain.staff import Act
from services.console.domain.words import SEGMENTS, say
from services.console.repository.sessions import Session

router = APIRouter()
BlockName = Annotated[str, Path(pattern=r"^[a-z_]{3,40}$")]
ClinicQuery = Annotated[str | None, Query(alias="clinic", max_length=64)]
STEPS_SHOWN = 50  # the steps going out next; the sequencer projects only as far as it must


def _words_by_step(templates: list[dict[str, Any]]) -> dict[tuple[str, int, str], str]:
    """The approved English words of each (workflow, step, channel), for the preview."""
    found: dict[tuple[str, int, str], str] = {}
    for t in templates:
        if t.get("status") == "approved" and t.get("language") == "en":
            found.setdefault((t["workflow_key"], int(t["step"]), t["channel"]), t["body"])
    return found


@router.get("/segments", response_class=HTMLResponse)
async def segments_page(
    request: Request,
    console: ConsoleDep,
    session: SignedIn,
    clinic: ClinicQuery = None,
    segment: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    clinic_id = clinic_for(console, session.staff, clinic)
    apis, token = console.apis, session.token
    # One round: the segment shown is the one asked for, else the first of the segmenter's
    # rules, so its preview needs no answer from the list first.
    chosen = segment if segment in SEGMENTS else next(iter(SEGMENTS))
    listed_part, params_part, upcoming, going, templates = await parts(
        apis.segmenter.segments(token, clinic_id),
        apis.segmenter.params(token, clinic_id),
        apis.segmenter.preview(token, clinic_id, chosen, 30),
        apis.sequencer.preview(token, clinic_id, 7, STEPS_SHOWN),
        apis.messenger.templates(token, clinic_id),
    )
    listed, params = listed_part.essential(), params_part.essential()
    words = _words_by_step(templates.value or [])
    steps = []
    for item in (going.value or {}).get("steps", [])[:STEPS_SHOWN]:
        key = (item.get("workflow_key", ""), int(item.get("step", 0)), item.get("channel") or "")
        steps.append({**item, "words": words.get(key)})
    return render(
        request,
        console,
        "segments.html",
        session,
        clinic=clinic_id,
        segments=listed,
        names=SEGMENTS,
        say=say,
        params=params,
        chosen=chosen,
        upcoming=upcoming,
        going=going,
        steps=steps,
        may_edit=session.staff.may_in(Act.edit_segments, clinic_id),
        done=request.query_params.get("done"),
    )


async def _edit(
    request: Request,
    console: Console,
    session: Session,
    clinic_id: str,
    block: str,
    errors: dict[str, str] | None = None,
    status: int = 200,
    submitted: dict[str, Any] | None = None,
) -> Response:
    params = await console.apis.segmenter.params(session.token, clinic_id)
    current = params["parameters"].get(block)
    if current is None:
        raise HTTPException(404, "no such block of parameters")
    return render(
        request,
        console,
        "segment_edit.html",
        session,
        status=status,
        clinic=clinic_id,
        block=block,
        label=say(SEGMENTS, block) if block != "general" else "Rules across segments",
        fields=form_fields(submitted or current),
        overridden=block in params.get("overridden", []),
        errors=errors or {},
        may_edit=session.staff.may_in(Act.edit_segments, clinic_id),
    )


@router.get("/segments/{block}", response_class=HTMLResponse)
async def edit_page(
    request: Request,
    console: ConsoleDep,
    session: SignedIn,
    block: BlockName,
    clinic: ClinicQuery = None,
) -> Response:
    clinic_id = clinic_for(console, session.staff, clinic)
    return await _edit(request, console, session, clinic_id, block)


@router.post("/segments/{block}")
async def save_block(
    request: Request, console: ConsoleDep, session: CheckedForm, block: BlockName
) -> Response:
    form = await form_of(request)
    clinic_id = clinic_for(console, session.staff, form.get("clinic"))
    params = await console.apis.segmenter.params(session.token, clinic_id)
    current = params["parameters"].get(block)
    if current is None:
        raise HTTPException(404, "no such block of parameters")
    values, errors = read_form(current, form)
    if errors:
        return await _edit(request, console, session, clinic_id, block, errors, 422)
    try:
        await console.apis.segmenter.put_params(session.token, clinic_id, block, values)
    except ApiError as exc:
        if exc.status != 422:
            raise
        return await _edit(
            request, console, session, clinic_id, block, {"": exc.words}, 422, values
        )
    return back("/segments", "saved", clinic=clinic_id)
