"""What every console route shares: the wiring (``Console``), the signed-in person, the CSRF
check on every form, page rendering, and what a refusal from a service becomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlparse

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment

from services.console.adapters.escalation import EscalationApi
from services.console.adapters.messenger import MessengerApi
from services.console.adapters.metrics import MetricsApi
from services.console.adapters.oidc import OidcClient
from services.console.adapters.pilots import PilotsApi
from services.console.adapters.segmenter import SegmenterApi
from services.console.adapters.sequencer import SequencerApi
from services.console.adapters.staff_tokens import StaffTokens
from services.console.domain.staff import Staff, clinic_in_view
from services.console.repository.sessions import CookieSessions, Session
from services.console.sealing import PatientRefs
from services.console.settings import ConsoleSettings


@dataclass
class Apis:
    escalation: EscalationApi
    messenger: MessengerApi
    segmenter: SegmenterApi
    sequencer: SequencerApi
    metrics: MetricsApi
    pilots: PilotsApi


@dataclass
class Console:
    """Built once in the composition root and put on ``app.state.console``."""

    settings: ConsoleSettings
    apis: Apis
    sessions: CookieSessions
    refs: PatientRefs
    tokens: StaffTokens | None  # None: nobody can sign in (misconfigured; /readyz says so)
    oidc: OidcClient | None
    pages: Environment


def _console(request: Request) -> Console:
    found: Console = request.app.state.console
    return found


ConsoleDep = Annotated[Console, Depends(_console)]


class SignInNeeded(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def safe_next(path: str | None) -> str:
    """Only a path on this site (no scheme, no host, no //) is followed after sign-in."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    parsed = urlparse(path)
    return path if not parsed.scheme and not parsed.netloc else "/"


async def _signed_in(request: Request, console: ConsoleDep) -> Session:
    session = console.sessions.load(request)
    if session is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInNeeded(path if request.method == "GET" else "/")
    return session


SignedIn = Annotated[Session, Depends(_signed_in)]


def _same_origin(request: Request, console: Console) -> bool:
    """A form post comes from the console's own pages (defence in depth beside the token)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = {console.settings.base_url.rstrip("/"), f"{request.url.scheme}://{request.url.netloc}"}
    return origin.rstrip("/") in own


async def form_of(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _checked(request: Request, console: ConsoleDep, session: SignedIn) -> Session:
    form = await form_of(request)
    if not _same_origin(request, console) or not session.csrf_ok(form.get("csrf")):
        raise HTTPException(403, "this form is out of date or did not come from the console")
    return session


CheckedForm = Annotated[Session, Depends(_checked)]


def clinic_for(console: Console, staff: Staff, asked: str | None) -> str:
    clinic = clinic_in_view(staff, asked, console.settings.default_clinic)
    if clinic is None:
        raise HTTPException(400, "choose a clinic: add ?clinic=<id> to the address")
    return clinic


def render(
    request: Request,
    console: Console,
    template: str,
    session: Session | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    page = console.pages.get_template(template)
    html = page.render(
        request=request,
        session=session,
        staff=session.staff if session else None,
        csrf=session.csrf if session else "",
        ref=console.refs.ref,
        settings=console.settings,
        **context,
    )
    # Pages show patients' words and names: never cached, never framed.
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def back(path: str, done: str | None = None, clinic: str | None = None) -> RedirectResponse:
    """303 to a console page after a form, with a fixed notice code (never free text)."""
    query = []
    if clinic:
        query.append(f"clinic={quote(clinic, safe='')}")
    if done:
        query.append(f"done={quote(done, safe='')}")
    joint = "&" if "?" in path else "?"
    target = path + (joint + "&".join(query) if query else "")
    return RedirectResponse(target, status_code=303)


def patient_of(console: Console, ref: str) -> str:
    """The patient a URL's reference stands for; 404 for anything that is not one of ours."""
    patient_key = console.refs.key(ref)
    if patient_key is None or ":" not in patient_key:
        raise HTTPException(404, "no such patient")
    return patient_key
