"""Templates: list, lint, draft, edit, approve (admins only), retire.

A practice's versions belong to its clinic; the shared library (``clinic_id`` null) can only
be changed by an admin scoped to every clinic. A draft the linter refuses cannot be saved
(422 with every issue), and is linted again at approval.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from services.messenger import template_store
from services.messenger.domain.linter import LintIssue, lint
from services.messenger.domain.templates import Template
from shared.auth import Admin, CurrentPrincipal, Operator, Principal, require_clinic
from shared.events.common import Channel, ClinicalUrgency, Key, Purpose
from shared.events.outreach import Tone
from shared.runtime import Runtime

router = APIRouter(tags=["templates"])


def _lint(request: Request, t: Template) -> list[LintIssue]:
    settings = request.app.state.runtime.extras["messenger"].settings
    return lint(
        t,
        sms_max_chars=settings.sms_max_chars,
        first_contact_max_chars=settings.sms_first_max_chars,
    )


TemplateId = Annotated[int, Path(ge=1)]


class TemplateBody(BaseModel):
    clinic_id: str | None = Field(default=None, max_length=100, description="null: shared library")
    workflow_key: Key
    step: int = Field(ge=1, le=50)
    channel: Channel
    tone: Tone
    language: str = Field(pattern=r"^(en|es)$")
    subject: str | None = Field(default=None, max_length=200)
    body: str = Field(min_length=1, max_length=5000)
    purpose: Purpose = Purpose.care
    urgency: ClinicalUrgency = ClinicalUrgency.routine

    def template(self) -> Template:
        return Template(
            self.workflow_key,
            self.step,
            self.channel,
            self.tone,
            self.language,
            self.body,
            self.subject,
            self.purpose,
            self.urgency,
        )


class DraftEdit(BaseModel):
    subject: str | None = Field(default=None, max_length=200)
    body: str = Field(min_length=1, max_length=5000)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _may_change(principal: Principal, clinic_id: str | None) -> None:
    if clinic_id is None:
        if principal.clinics is not None:
            raise HTTPException(403, "the shared library needs an admin scoped to every clinic")
    else:
        require_clinic(principal, clinic_id)


def _may_read(principal: Principal, clinic_id: str | None) -> None:
    if clinic_id is not None:
        require_clinic(principal, clinic_id)


def _refuse_if_lint(request: Request, t: Template) -> None:
    issues = _lint(request, t)
    if issues:
        raise HTTPException(
            422, {"message": "the template linter refused it", "issues": [str(i) for i in issues]}
        )


@router.get("/templates")
async def list_templates(
    request: Request,
    principal: CurrentPrincipal,
    clinic_id: Annotated[str | None, Query(max_length=100)] = None,
    workflow_key: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[str | None, Query(pattern=r"^(draft|approved|retired)$")] = None,
) -> dict[str, Any]:
    """A clinic's versions and the shared library (``clinic_id`` omitted: the library only)."""
    _may_read(principal, clinic_id)
    async with _runtime(request).sessions() as session:
        rows = await template_store.listing(
            session, clinic_id, workflow_key=workflow_key, status=status
        )
    return {"templates": rows}


@router.post("/templates/lint")
async def lint_template(
    principal: CurrentPrincipal, request: Request, body: TemplateBody
) -> dict[str, Any]:
    """What the linter says, without saving anything."""
    issues = _lint(request, body.template())
    return {"ok": not issues, "issues": [{"rule": i.rule, "message": i.message} for i in issues]}


@router.post("/templates", status_code=201)
async def create_template(
    request: Request, principal: Operator, body: TemplateBody
) -> dict[str, Any]:
    """A new draft version (the next version number for its key)."""
    _may_change(principal, body.clinic_id)
    template = body.template()
    _refuse_if_lint(request, template)
    async with _runtime(request).sessions() as session, session.begin():
        row = await template_store.create(session, body.clinic_id, template, principal.subject)
    return row


async def _existing(request: Request, principal: Principal, template_id: int) -> dict[str, Any]:
    async with _runtime(request).sessions() as session:
        row = await template_store.get(session, template_id)
    # Another clinic's template reads as missing: a 403 would say the id exists elsewhere.
    if row is None or (row["clinic_id"] is not None and not principal.may_access(row["clinic_id"])):
        raise HTTPException(404, "no such template")
    return row


@router.get("/templates/{template_id}")
async def get_template(
    request: Request, principal: CurrentPrincipal, template_id: TemplateId
) -> dict[str, Any]:
    return await _existing(request, principal, template_id)


@router.patch("/templates/{template_id}")
async def edit_draft(
    request: Request, principal: Operator, template_id: TemplateId, edit: DraftEdit
) -> dict[str, Any]:
    """Change a draft's words (an approved version never changes: draft a new one)."""
    row = await _existing(request, principal, template_id)
    _may_change(principal, row["clinic_id"])
    if row["status"] != "draft":
        raise HTTPException(409, "only a draft can be edited; create a new version instead")
    changed = template_store.to_template({**row, "body": edit.body, "subject": edit.subject})
    _refuse_if_lint(request, changed)
    async with _runtime(request).sessions() as session, session.begin():
        updated = await template_store.update_draft(
            session, template_id, body=edit.body, subject=edit.subject
        )
    if updated is None:
        raise HTTPException(409, "the draft changed status meanwhile")
    return updated


@router.post("/templates/{template_id}/approve")
async def approve_template(
    request: Request, principal: Admin, template_id: TemplateId
) -> dict[str, Any]:
    """Approve a draft: from now on it is the version sent (the one it replaces is retired)."""
    row = await _existing(request, principal, template_id)
    _may_change(principal, row["clinic_id"])
    _refuse_if_lint(request, template_store.to_template(row))
    runtime = _runtime(request)
    async with runtime.sessions() as session, session.begin():
        approved = await template_store.approve(
            session, template_id, principal.subject, runtime.clock.now()
        )
    if approved is None:
        raise HTTPException(409, "only a draft can be approved")
    return approved


@router.post("/templates/{template_id}/retire")
async def retire_template(
    request: Request, principal: Admin, template_id: TemplateId
) -> dict[str, Any]:
    """Stop sending a version. With no approved version left, its steps are blocked
    (``template_not_approved``) until another is approved."""
    row = await _existing(request, principal, template_id)
    _may_change(principal, row["clinic_id"])
    async with _runtime(request).sessions() as session, session.begin():
        retired = await template_store.retire(session, template_id)
    if retired is None:
        raise HTTPException(409, "already retired")
    return retired


@router.delete("/templates/{template_id}", status_code=204)
async def delete_draft(request: Request, principal: Operator, template_id: TemplateId) -> None:
    row = await _existing(request, principal, template_id)
    _may_change(principal, row["clinic_id"])
    async with _runtime(request).sessions() as session, session.begin():
        if not await template_store.delete_draft(session, template_id):
            raise HTTPException(409, "only a draft can be deleted")
