"""Signing in and out.

- Dev stack (``REVISIT_CONSOLE_DEV_SIGN_IN``; refused in production): a form that names a staff
  id, a role and clinics, and gets a dev token for them.
- Production: OpenID Connect with the practice's identity provider (``adapters/oidc.py``); the
  console shows what the ID token's role and clinics allow, and forwards the person's own access
  token, which each service validates against the provider's keys and scopes by its claims.

Either way the session cookie then holds the credential the console forwards to the services.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console.adapters.oidc import OidcError, Transaction
from services.console.api.deps import Console, ConsoleDep, form_of, render, safe_next
from services.console.domain.staff import ROLES, Staff, parse_clinics, staff_from_claims

router = APIRouter()
STAFF_ID = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


def _sign_in_page(
    request: Request, console: Console, next_path: str, error: str = "", status: int = 200
) -> HTMLResponse:
    csrf = secrets.token_urlsafe(24)
    page = render(
        request,
        console,
        "sign_in.html",
        None,
        status=status,
        sign_in_csrf=csrf,
        next_path=next_path,
        roles=ROLES,
        error=error,
        dev=console.settings.dev_sign_in,
        oidc=console.oidc is not None,
        default_clinic=console.settings.default_clinic,
    )
    console.sessions.stash(page, {"csrf": csrf})
    return page


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(
    request: Request, console: ConsoleDep, next: Annotated[str | None, Query()] = None
) -> Response:
    return _sign_in_page(request, console, safe_next(next))


def _start_session(
    console: Console, staff: Staff, next_path: str, access_token: str | None = None
) -> Response:
    """A session forwarding ``access_token`` (the identity provider's, for this person), or on
    the dev stack a dev token the console signs."""
    if access_token is None:
        if console.tokens is None:
            raise HTTPException(503, "the console cannot issue dev credentials (no JWT secret)")
        ttl = timedelta(hours=console.settings.session_hours)
        access_token = console.tokens.for_staff(staff, ttl)
    response = RedirectResponse(safe_next(next_path), status_code=303)
    console.sessions.unstash(response)
    console.sessions.start(response, staff, access_token)
    return response


@router.post("/sign-in")
async def dev_sign_in(request: Request, console: ConsoleDep) -> Response:
    if not console.settings.dev_sign_in:
        raise HTTPException(404, "the dev sign-in is off here; sign in with your organisation")
    form = await form_of(request)
    next_path = safe_next(form.get("next"))
    stashed = console.sessions.stashed(request) or {}
    presented, expected = form.get("csrf", ""), str(stashed.get("csrf", ""))
    if not expected or not secrets.compare_digest(presented, expected):
        return _sign_in_page(
            request, console, next_path, "The sign-in form expired: try again.", 403
        )
    subject, role = form.get("subject", "").strip(), form.get("role", "")
    if not STAFF_ID.fullmatch(subject):
        error = "Staff id: 1-64 letters, digits or . _ @ - (no spaces)."
        return _sign_in_page(request, console, next_path, error, 422)
    if role not in ROLES:
        return _sign_in_page(request, console, next_path, "Role: choose one of the list.", 422)
    try:
        staff = Staff(subject, role, parse_clinics(role, form.get("clinics", "")), via="dev")
    except ValueError as exc:
        return _sign_in_page(request, console, next_path, f"Clinics: {exc}.", 422)
    return _start_session(console, staff, next_path)


@router.get("/sign-in/oidc")
async def oidc_start(console: ConsoleDep, next: Annotated[str | None, Query()] = None) -> Response:
    if console.oidc is None:
        raise HTTPException(404, "no identity provider is configured")
    try:
        url, tx = await console.oidc.start(safe_next(next))
    except OidcError as exc:
        raise HTTPException(502, str(exc)) from None
    response = RedirectResponse(url, status_code=303)
    console.sessions.stash(response, tx.as_dict())
    return response


@router.get("/auth/callback")
async def oidc_callback(request: Request, console: ConsoleDep) -> Response:
    if console.oidc is None:
        raise HTTPException(404, "no identity provider is configured")
    stashed = console.sessions.stashed(request)
    if not stashed or "state" not in stashed:
        return _sign_in_page(request, console, "/", "That sign-in expired: start again.", 400)
    tx = Transaction.from_dict(stashed)
    try:
        signed_in = await console.oidc.finish(dict(request.query_params), tx)
        settings = console.settings
        staff = staff_from_claims(
            signed_in.claims, settings.oidc_role_claim, settings.oidc_clinics_claim
        )
    except (OidcError, ValueError) as exc:
        return _sign_in_page(request, console, tx.next_path, f"Not signed in: {exc}.", 401)
    return _start_session(console, staff, tx.next_path, signed_in.access_token)


@router.post("/sign-out")
async def sign_out(request: Request, console: ConsoleDep) -> Response:
    session = console.sessions.load(request)
    form = await form_of(request)
    if session is not None and not session.csrf_ok(form.get("csrf")):
        raise HTTPException(403, "this form is out of date or did not come from the console")
    response = RedirectResponse("/sign-in", status_code=303)
    console.sessions.end(response)
    return response
