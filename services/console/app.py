"""Composition root of the staff console: settings -> service clients, sessions, sign-in ->
pages. Nothing is built at import; ``create_app`` builds one console, ``serve`` runs it."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from services.console.adapters.base import ApiError
from services.console.adapters.escalation import HttpEscalationApi
from services.console.adapters.messenger import HttpMessengerApi
from services.console.adapters.metrics import HttpMetricsApi
from services.console.adapters.oidc import OidcClient
from services.console.adapters.pilots import HttpPilotsApi
from services.console.adapters.segmenter import HttpSegmenterApi
from services.console.adapters.sequencer import HttpSequencerApi
from services.console.adapters.staff_tokens import SharedSecretTokens, StaffTokens
from services.console.api import ROUTERS
from services.console.api.deps import Apis, Console, SignInNeeded, render
from services.console.pages import page_environment
from services.console.repository.sessions import CookieSessions
from services.console.sealing import PatientRefs
from services.console.settings import ConsoleSettings

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
# Scripts and styles come only from the console itself (no inline code, no CDN); nothing frames
# it; forms post only to it.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def http_apis(settings: ConsoleSettings, http: httpx.AsyncClient) -> Apis:
    return Apis(
        escalation=HttpEscalationApi(http, settings.escalation_url),
        messenger=HttpMessengerApi(http, settings.messenger_url),
        segmenter=HttpSegmenterApi(http, settings.segmenter_url),
        sequencer=HttpSequencerApi(http, settings.sequencer_url),
        metrics=HttpMetricsApi(http, settings.metrics_url),
        pilots=HttpPilotsApi(http, settings.sequencer_url),
    )


def create_app(
    settings: ConsoleSettings | None = None,
    *,
    apis: Apis | None = None,
    tokens: StaffTokens | None = None,
) -> FastAPI:
    """The console; ``apis`` and ``tokens`` replace the real ones in tests."""
    settings = settings or ConsoleSettings()
    # Outside production an empty secret means a random one: sessions last as long as the process.
    secret = settings.secret or secrets.token_urlsafe(48)
    http = httpx.AsyncClient(
        timeout=settings.api_timeout_s, follow_redirects=False, trust_env=False
    )
    auth = settings.auth
    if tokens is None and auth.revisit_jwt_secret:
        tokens = SharedSecretTokens(
            auth.revisit_jwt_secret, auth.revisit_jwt_issuer, auth.revisit_jwt_audience
        )
    oidc = None
    if settings.oidc_issuer and settings.oidc_client_id:
        oidc = OidcClient(
            http,
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            scopes=settings.oidc_scopes,
            redirect_uri=f"{settings.base_url}/auth/callback",
        )
    console = Console(
        settings=settings,
        apis=apis or http_apis(settings, http),
        sessions=CookieSessions(
            secret, secure=settings.secure_cookies, ttl_s=settings.session_hours * 3600
        ),
        refs=PatientRefs(secret),
        tokens=tokens,
        oidc=oidc,
        pages=page_environment(HERE / "templates"),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await http.aclose()

    app = FastAPI(
        title="Revisit console",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.console = console
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in ROUTERS:
        app.include_router(router)
    _handle_errors(app, console)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app


def _handle_errors(app: FastAPI, console: Console) -> None:
    def page(request: Request, status: int, title: str, words: str) -> HTMLResponse:
        session = console.sessions.load(request)
        return render(request, console, "error.html", session, status, title=title, words=words)

    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse(f"/sign-in?next={quote(exc.next_path, safe='')}", 303)

    @app.exception_handler(ApiError)
    async def refused(request: Request, exc: ApiError) -> Response:
        if exc.status == 401:  # the credential expired or was refused: sign in again
            response = RedirectResponse("/sign-in", 303)
            console.sessions.end(response)
            return response
        if exc.status in (403, 404):
            # Not allowed and not there read the same: nothing is said about another clinic.
            return page(request, 404, "Not found", "There is nothing here for you.")
        if exc.status >= 500:
            return page(
                request,
                503,
                "Not available",
                f"The {exc.service} service did not answer. Try again in a moment.",
            )
        return page(request, exc.status, "Refused", exc.words)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        title = {403: "Not allowed", 404: "Not found"}.get(exc.status_code, "Something is wrong")
        return page(request, exc.status_code, title, str(exc.detail))


def serve() -> None:
    """``revisit service console``: settings from the environment, then uvicorn."""
    import uvicorn

    from shared.logging import configure_logging
    from shared.telemetry import instrument_fastapi, setup_tracing

    settings = ConsoleSettings()
    configure_logging("console", settings.telemetry.log_level)
    # httpx logs every call to a service at INFO, path and all: a page is eight lines and a
    # share of the console's CPU. Refusals are the console's own to log; the services log theirs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    setup_tracing("console", settings.telemetry)
    app = create_app(settings)
    instrument_fastapi(app)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.listen_port,
        log_config=None,
        access_log=False,  # request lines carry paths and queries
        timeout_graceful_shutdown=5,
        lifespan="on",
    )
