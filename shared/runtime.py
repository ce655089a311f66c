"""The runtime every service process shares: engine, clock, relay, consumers, timers, health.

A service's composition root (``services/<name>/app.py``) describes what it consumes, which
timers it fires and which routers it serves; ``build_app`` turns that into a FastAPI app whose
lifespan starts and stops everything in the right order. Nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared import pipeline_metrics as pm
from shared import retention
from shared.admin import router as admin_router
from shared.audit import AuditMiddleware, AuditWriter
from shared.audit_api import router as audit_router
from shared.auth import ApiKeyLookup, CurrentPrincipal, build_authenticator
from shared.clock import Clock, ControlledClock, SystemClock
from shared.config import RevisitSettings
from shared.consumer import ConsumerRunner, Subscription, attach
from shared.db import make_engine, make_sessions, plain_dsn
from shared.erasure_api import router as erasure_router
from shared.inbox import Inbox
from shared.kafka import make_broker, make_producer
from shared.loops import Loops
from shared.outbox import Outbox, OutboxRelay
from shared.request_limits import BodyLimit
from shared.revocation import RevokedTokens
from shared.revocation import router as revocation_router
from shared.timer_poller import TimerPoller
from shared.timers import TimerAction, Timers
from shared.validation import unstorable_value, validation_problems

log = logging.getLogger(__name__)
_heap_frozen = False


@dataclass
class Runtime:
    """What a service's handlers and API need at run time (built in the lifespan)."""

    service: str
    settings: RevisitSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    outbox: Outbox
    inbox: Inbox
    timers: Timers
    extras: dict[str, Any] = field(default_factory=dict)
    # Background loops (relay, timers, dispatchers, sweepers) under one supervisor; a service
    # adds its own in on_start with ``runtime.loops.add(name, run)``.
    loops: Loops = field(default_factory=lambda: Loops("service"))


@dataclass(frozen=True)
class ServiceSpec:
    """What makes one service: its schema, consumers, timers and API."""

    name: str
    schema: str
    subscriptions: Callable[[Runtime], Sequence[Subscription]] = lambda _rt: ()
    timer_handlers: Callable[[Runtime], Mapping[str, TimerAction]] = lambda _rt: {}
    routers: Sequence[APIRouter] = ()
    on_start: Callable[[Runtime], Awaitable[None]] | None = None
    on_stop: Callable[[Runtime], Awaitable[None]] | None = None
    # Only services that integrations call (ingest) accept API keys; they say how to find one.
    api_key_lookup: Callable[[Runtime], ApiKeyLookup] | None = None
    # Extra exposition appended to /metrics (the metrics service's read-model figures).
    extra_metrics: Callable[[Runtime], Awaitable[bytes]] | None = None
    # Request body limits by path prefix, where REVISIT_MAX_BODY_BYTES does not fit.
    body_limits: Mapping[str, int] = field(default_factory=dict)
    title: str = ""
    description: str = ""


def build_app(spec: ServiceSpec, settings: RevisitSettings) -> FastAPI:
    from shared.phi import configure_pseudonym_key
    from shared.telemetry import instrument_fastapi, setup_tracing

    setup_tracing(spec.name, settings.telemetry)
    configure_pseudonym_key(pseudonym_key(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with run_service(spec, settings) as runtime:
            app.state.runtime = runtime
            lookup = spec.api_key_lookup(runtime) if spec.api_key_lookup is not None else None
            revoked = RevokedTokens(runtime.engine, settings.auth.revisit_token_revocation_cache_s)
            app.state.revoked_tokens = revoked
            app.state.authenticator = build_authenticator(
                settings.auth, lookup, profile=settings.revisit_profile, revoked=revoked
            )
            app.state.audit = runtime.extras["audit"]
            yield

    # In production the API's description is for staff only: it maps every route an attacker
    # could try. Elsewhere it stays open for people trying Revisit.
    open_docs = settings.revisit_profile != "production"
    app = FastAPI(
        title=spec.title or f"Revisit {spec.name}",
        description=spec.description,
        version="1.0.0",
        lifespan=lifespan,
        docs_url="/docs" if open_docs else None,
        redoc_url="/redoc" if open_docs else None,
        openapi_url="/openapi.json" if open_docs else None,
    )
    app.state.service = spec.name
    app.state.authenticator = build_authenticator(settings.auth, profile=settings.revisit_profile)
    app.include_router(health_router(spec, settings))
    app.include_router(admin_router)
    app.include_router(revocation_router)
    app.include_router(audit_router)
    app.include_router(erasure_router)
    for router in spec.routers:
        app.include_router(router)
    app.add_middleware(AuditMiddleware, service=spec.name)
    if not open_docs:
        app.include_router(docs_router(app))
    app.add_exception_handler(RequestValidationError, validation_problems)
    app.add_exception_handler(DBAPIError, unstorable_value)
    app.add_middleware(
        BodyLimit, default=settings.revisit_max_body_bytes, by_prefix=spec.body_limits
    )
    instrument_fastapi(app)
    return app


def pseudonym_key(settings: RevisitSettings) -> str:
    """The configured key; outside production, one derived from the staff-token secret so
    every service of a dev stack agrees (production requires its own key)."""
    if settings.telemetry.revisit_pseudonym_key:
        return settings.telemetry.revisit_pseudonym_key
    secret = settings.auth.revisit_jwt_secret
    return hashlib.sha256(f"revisit-pseudonym:{secret}".encode()).hexdigest() if secret else ""


def docs_router(app: FastAPI) -> APIRouter:
    """/openapi.json, /docs and /redoc for a signed-in caller only (any role)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/openapi.json")
    async def openapi(_caller: CurrentPrincipal) -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs")
    async def docs(_caller: CurrentPrincipal) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

    @router.get("/redoc")
    async def redoc(_caller: CurrentPrincipal) -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=app.title)

    return router


@contextlib.asynccontextmanager
async def run_service(spec: ServiceSpec, settings: RevisitSettings) -> AsyncIterator[Runtime]:
    """Start the service's moving parts; on exit stop them consumers-first."""
    engine = make_engine(settings.db, application_name=f"revisit-{spec.name}")
    listen_dsn = plain_dsn(settings.db.database_url)
    clock: Clock
    if settings.revisit_clock == "controlled":
        clock = ControlledClock(engine, listen_dsn)
        await clock.start()
    else:
        clock = SystemClock()
    runtime = Runtime(
        service=spec.name,
        settings=settings,
        engine=engine,
        sessions=make_sessions(engine),
        clock=clock,
        outbox=Outbox(spec.schema),
        inbox=Inbox(spec.schema),
        timers=Timers(spec.schema),
        loops=Loops(spec.name),
    )
    producer = make_producer(settings.kafka, f"revisit-{spec.name}")
    await producer.start()
    relay = OutboxRelay(
        engine,
        spec.schema,
        producer,
        listen_dsn=listen_dsn,
        batch_size=settings.revisit_relay_batch,
        on_published=pm.EVENTS_PUBLISHED.labels(spec.name).inc,
        on_leader=lambda leads: pm.LEADER.labels(spec.name, "relay").set(int(leads)),
    )
    runtime.loops.add("relay", relay.run)
    if isinstance(clock, ControlledClock):
        runtime.loops.add("clock", clock.follow)
    runtime.extras["relay"] = relay
    audit = AuditWriter(engine, spec.name)
    runtime.extras["audit"] = audit
    runtime.loops.add("audit", audit.run)
    sweeps = retention.standard(spec.name, spec.schema, engine, settings.retention)
    runtime.extras["retention"] = sweeps
    runtime.loops.add("pruning", sweeps.run)
    handlers = spec.timer_handlers(runtime)
    if handlers:
        runtime.loops.add("timers", timer_poller(runtime, handlers).run)
    broker = make_broker(settings.kafka, f"revisit-{spec.name}")
    runner = ConsumerRunner(spec.name, runtime.sessions, runtime.inbox, producer)
    subscriptions = spec.subscriptions(runtime)
    for sub in subscriptions:
        attach(broker, runner, sub, settings.kafka)
    runtime.extras["producer"] = producer
    try:
        runtime.loops.start()
        if spec.on_start is not None:
            await spec.on_start(runtime)
        if subscriptions:
            await broker.start()
        freeze_startup_heap()
        runtime.extras["ready"] = True
        yield runtime
    finally:
        runtime.extras["ready"] = False
        # Consumers first (no new work), then background loops, then the producer, then the DB.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(broker.stop(), timeout=6)
        with contextlib.suppress(Exception):
            await runtime.loops.stop(within=5)
        if spec.on_stop is not None:
            with contextlib.suppress(Exception):
                await spec.on_stop(runtime)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), timeout=3)
        if isinstance(clock, ControlledClock):
            await clock.stop()
        await engine.dispose()


def timer_poller(runtime: Runtime, handlers: Mapping[str, TimerAction]) -> TimerPoller:
    """A poller of this service's timers, woken by clock moves, reporting to /metrics."""
    service = runtime.service
    poller = TimerPoller(
        runtime.sessions,
        runtime.timers.schema,
        runtime.clock,
        handlers,
        batch_size=runtime.settings.revisit_timer_batch,
        poll_interval=runtime.settings.revisit_poll_interval_ms / 1000,
        on_fired=pm.TIMERS_FIRED.labels(service).inc,
        on_failed=lambda kind, outcome: pm.TIMERS_FAILED.labels(service, kind, outcome).inc(),
        max_attempts=runtime.settings.revisit_timer_max_attempts,
    )
    if isinstance(runtime.clock, ControlledClock):
        runtime.clock.on_change(poller.wake)
    return poller


def freeze_startup_heap() -> None:
    """Keep what start-up built out of the cyclic garbage collector's full passes (once).

    Modules, pydantic and SQLAlchemy metadata, the app and its clients live as long as the
    process, yet every full collection rescans them: the backbone bench (bench/README.md) found
    those passes to be about a quarter of a consumer's CPU. Reference counting still frees
    frozen objects; only cycles among them are never collected, so this runs once per process.
    """
    global _heap_frozen
    if _heap_frozen:
        return
    _heap_frozen = True
    gc.collect()
    gc.freeze()


def health_router(spec: ServiceSpec, settings: RevisitSettings) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": spec.name}

    @router.get(
        "/readyz", summary="Database reachable, consumers started, every required loop running"
    )
    async def readyz(request: Request, response: Response) -> dict[str, Any]:
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        checks: dict[str, str] = {}
        if runtime is None or not runtime.extras.get("ready"):
            checks["startup"] = "not finished"
        else:
            down = runtime.loops.down()
            checks["loops"] = f"down: {', '.join(down)}" if down else "ok"
            try:
                async with runtime.engine.connect() as conn:
                    await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=2)
                checks["database"] = "ok"
            except Exception as exc:
                checks["database"] = type(exc).__name__
        ok = bool(checks) and all(v == "ok" for v in checks.values())
        response.status_code = 200 if ok else 503
        return {"status": "ready" if ok else "not ready", "service": spec.name, "checks": checks}

    @router.get("/metrics", summary="Prometheus metrics of this process (no PHI in any label)")
    async def metrics(request: Request) -> Response:
        # Scraped by Prometheus inside the deployment's network. When a scrape token is set
        # (always in production), the scraper must present it; the figures carry no PHI.
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        token = settings.revisit_metrics_token
        if token and request.headers.get("authorization") != f"Bearer {token}":
            return Response("metrics need the scrape token (REVISIT_METRICS_TOKEN)", 401)
        body = generate_latest()
        if runtime is not None and spec.extra_metrics is not None:
            body += await spec.extra_metrics(runtime)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
