"""Pilots: the clinic's list, and week 1's definition (admins define a draft, change or delete
it, start it); closing a running pilot. The weeks themselves are in ``pilot_weeks.py``. Every
action goes through the sequencer's pilot API with the person's own credential."""

from __future__ import annotations

from typing import Annotated, Any

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
from services.console.domain.pilot_form import (
    CHOICES,
    ID_LISTS,
    NUMBERS,
    PilotForm,
    read_form,
    refusal_by_field,
)
from services.console.domain.pilot_form import form_of as pilot_form_of
from services.console.domain.pilots import WEEK_NAMES
from services.console.domain.staff import Act
from services.console.domain.words import SEGMENTS, say
from services.console.repository.sessions import Session

router = APIRouter()
PilotId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.\-]*$")]
ClinicQuery = Annotated[str | None, Query(alias="clinic", max_length=64)]


def pilot_path(pilot_id: str, week: int | None = None) -> str:
    return f"/pilots/{pilot_id}" + (f"?week={week}" if week else "")


@router.get("/pilots", response_class=HTMLResponse)
async def pilots_page(
    request: Request, console: ConsoleDep, session: SignedIn, clinic: ClinicQuery = None
) -> Response:
    clinic_id = clinic_for(console, session.staff, clinic)
    pilots = await console.apis.pilots.pilots(session.token, clinic_id)
    return render(
        request,
        console,
        "pilots.html",
        session,
        clinic=clinic_id,
        pilots=pilots,
        week_names=WEEK_NAMES,
        segment_words=lambda code: say(SEGMENTS, code),
        may_define=session.staff.may_in(Act.steer_pilot, clinic_id),
        done=request.query_params.get("done"),
    )


def _form_page(
    request: Request,
    console: Console,
    session: Session,
    clinic_id: str,
    form: PilotForm,
    *,
    pilot: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        console,
        "pilot_form.html",
        session,
        status=status,
        clinic=clinic_id,
        pilot=pilot,
        form=form,
        errors=errors or {},
        segments=SEGMENTS,
        choices=CHOICES,
        id_lists=ID_LISTS,
        numbers=NUMBERS,
        may_define=session.staff.may_in(Act.steer_pilot, clinic_id),
    )


@router.get("/pilots/new", response_class=HTMLResponse)
async def new_pilot_page(
    request: Request, console: ConsoleDep, session: SignedIn, clinic: ClinicQuery = None
) -> Response:
    clinic_id = clinic_for(console, session.staff, clinic)
    return _form_page(request, console, session, clinic_id, pilot_form_of(None))


@router.post("/pilots/new")
async def define_pilot(request: Request, console: ConsoleDep, session: CheckedForm) -> Response:
    submitted = await form_of(request)
    clinic_id = clinic_for(console, session.staff, submitted.get("clinic"))
    definition, form, errors = read_form(submitted, new=True)
    if errors:
        return _form_page(request, console, session, clinic_id, form, errors=errors, status=422)
    try:
        made = await console.apis.pilots.define(
            session.token, {**definition, "clinic_id": clinic_id}
        )
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        return _form_page(
            request,
            console,
            session,
            clinic_id,
            form,
            errors=refusal_by_field(exc.detail),
            status=exc.status,
        )
    return back(pilot_path(made["pilot_id"]), "defined")


@router.get("/pilots/{pilot_id}/edit", response_class=HTMLResponse)
async def edit_pilot_page(
    request: Request, console: ConsoleDep, session: SignedIn, pilot_id: PilotId
) -> Response:
    pilot = await console.apis.pilots.pilot(session.token, pilot_id)
    form = pilot_form_of(pilot)
    return _form_page(request, console, session, pilot["clinic_id"], form, pilot=pilot)


@router.post("/pilots/{pilot_id}/edit")
async def change_pilot(
    request: Request, console: ConsoleDep, session: CheckedForm, pilot_id: PilotId
) -> Response:
    pilot = await console.apis.pilots.pilot(session.token, pilot_id)
    definition, form, errors = read_form(await form_of(request), new=False)
    clinic_id = pilot["clinic_id"]
    if not errors:
        try:
            await console.apis.pilots.change(session.token, pilot_id, definition)
        except ApiError as exc:
            if exc.status not in (409, 422):
                raise
            errors = refusal_by_field(exc.detail)
    if errors:
        return _form_page(
            request, console, session, clinic_id, form, pilot=pilot, errors=errors, status=422
        )
    return back(pilot_path(pilot_id), "changed")


DONE = {"start": "started", "close": "closed", "delete": "deleted"}


async def _act(console: Console, session: Session, pilot_id: str, act: str) -> Response:
    """Start, close or delete; the sequencer's refusal (409) comes back as a notice code."""
    pilots = console.apis.pilots
    try:
        if act == "start":
            await pilots.start(session.token, pilot_id)
        elif act == "close":
            await pilots.close(session.token, pilot_id)
        else:
            clinic_id = (await pilots.pilot(session.token, pilot_id))["clinic_id"]
            await pilots.delete(session.token, pilot_id)
            return back("/pilots", DONE[act], clinic=clinic_id)
    except ApiError as exc:
        if exc.status != 409:
            raise
        return back(pilot_path(pilot_id), f"not_{DONE[act]}")
    return back(pilot_path(pilot_id, 1 if act == "start" else None), DONE[act])


@router.post("/pilots/{pilot_id}/start")
async def start_pilot(console: ConsoleDep, session: CheckedForm, pilot_id: PilotId) -> Response:
    return await _act(console, session, pilot_id, "start")


@router.post("/pilots/{pilot_id}/close")
async def close_pilot(console: ConsoleDep, session: CheckedForm, pilot_id: PilotId) -> Response:
    return await _act(console, session, pilot_id, "close")


@router.post("/pilots/{pilot_id}/delete")
async def delete_pilot(console: ConsoleDep, session: CheckedForm, pilot_id: PilotId) -> Response:
    return await _act(console, session, pilot_id, "delete")
