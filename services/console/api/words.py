"""The words patients receive: each template with its lint result, and approval (admins)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.console.adapters.base import ApiError
from services.console.api.deps import (
    CheckedForm,
    ConsoleDep,
    SignedIn,
    back,
    clinic_for,
    form_of,
    render,
)
from services.console.domain.staff import Act

router = APIRouter()
LINTED = (
    "workflow_key",
    "step",
    "channel",
    "tone",
    "language",
    "subject",
    "body",
    "purpose",
    "urgency",
)


@router.get("/words", response_class=HTMLResponse)
async def words_page(
    request: Request,
    console: ConsoleDep,
    session: SignedIn,
    clinic: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    clinic_id = clinic_for(console, session.staff, clinic)
    apis, token = console.apis.messenger, session.token
    templates = await apis.templates(token, clinic_id)
    drafts = [t for t in templates if t.get("status") == "draft"]

    async def lint(t: dict[str, Any]) -> dict[str, Any]:
        body = {k: t.get(k) for k in LINTED if t.get(k) is not None}
        return await apis.lint(token, {**body, "clinic_id": t.get("clinic_id")})

    # Approved versions passed the linter when approved (and are linted again if re-drafted);
    # drafts are linted now, so staff see what stands between them and approval.
    results = await asyncio.gather(*(lint(t) for t in drafts))
    lint_of = {t["template_id"]: r for t, r in zip(drafts, results, strict=True)}
    shown = [t for t in templates if t.get("status") != "retired"]
    return render(
        request,
        console,
        "words.html",
        session,
        clinic=clinic_id,
        templates=shown,
        lint_of=lint_of,
        may_approve=session.staff.may_in(Act.approve_words, clinic_id),
        done=request.query_params.get("done"),
        error=request.query_params.get("error"),
    )


@router.post("/words/{template_id}/approve")
async def approve(
    request: Request,
    console: ConsoleDep,
    session: CheckedForm,
    template_id: Annotated[int, Path(ge=1)],
) -> Response:
    clinic = (await form_of(request)).get("clinic")
    try:
        await console.apis.messenger.approve(session.token, template_id)
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        return back("/words", "not_approved", clinic=clinic)
    return back("/words", "approved", clinic=clinic)
