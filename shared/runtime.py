"""The runtime every service process shares: engine, clock, relay, consumers, timers, health.

A service's composition root (``services/<name>/app.py``) describes what it consumes, which
timers it fires and which routers it serves; ``build_app`` turns that into a FastAPI app whose
lifespan starts and stops everything in the right order. Nothing connects at import time.

A service keeps what its handlers and routes share (its settings, provider clients, caches) in
one typed object, its *context*: ``ServiceSpec[C](context=build)`` where ``build(runtime)``
returns (or awaits) the ``C``. The lifespan builds it right after the runtime and before the
consumers, timers and ``on_start``; it is ``runtime.context`` from then on, and a route asks for
it with an ``Annotated`` dependency (``context_dependency``). If the context has an ``aclose()``
it is awaited at shutdown, after the loops have stopped. Background work runs under
``runtime.loops`` (shared/loops.py): ``runtime.loops.add(name, run)`` for a loop,
``runtime.loops.once(name, job)`` for a job that runs to its end; never a bare ``create_task``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, cast

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from typing_extensions import TypeVar

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
from shared.errors import error_responses, install_error_handlers
from shared.inbox import Inbox
from shared.kafka import make_broker, make_producer
from shared.loops import Loops
from shared.outbox import Outbox, OutboxRelay
from shared.request_limits import BodyLimit
from shared.retention import Retention
from shared.revocation import RevokedTokens
from shared.revocation import router as revocation_router
from shared.timer_poller import TimerPoller
from shared.timers import TimerAction, Timers
from shared.validation import unstorable_value

log = logging.getLogger(__name__)
_heap_frozen = False


# A service without a context of its own is a ServiceSpec / Runtime of None (``Runtime`` alone
# reads as ``Runtime[Any]`` while services are converted).
C = TypeVar("C", default=Any)
_UNBUILT: Any = object()


@dataclass
class Runtime(Generic[C]):
    """What a service's handlers and API need at run time (built in the lifespan)."""

    service: str
    settings: RevisitSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    outbox: Outbox
    inbox: Inbox
    timers: Timers
    # Being emptied: each service moves what it keeps here into its typed context.
    extras: dict[str, Any] = field(default_factory=dict)
    # Background loops (relay, timers, dispatchers, sweepers) under one supervisor; a service
    # adds its own in on_start with ``runtime.loops.add(name, run)``.
    loops: Loops = field(default_factory=lambda: Loops("service"))
    producer: AIOKafkaProducer | None = None
    relay: OutboxRelay | None = None
    # Every API request's audit row is queued here; the pruning sweeps a service adds to.
    audit: AuditWriter | None = None
    retention: Retention | None = None
    # True from the end of start-up until shutdown begins (``/readyz`` reads it).
    ready: bool = False
    _context: Any = field(default=_UNBUILT, repr=False)

    @property
    def context(self) -> C:
        """This service's own typed context (``ServiceSpec.context``)."""
        if self._context is _UNBUILT:
            raise RuntimeError(
                f"{self.service}: the service context is built in the lifespan, after the "
                "runtime; it is not there yet"
            )
        return cast(C, self._context)

    @context.setter
    def context(self, value: C) -> None:
        self._context = value


def _no_context(_runtime: Runtime[Any]) -> None:
    return None


_NO_CONTEXT: Any = _no_context  # a service without a context of its own: runtime.context is None


@dataclass(frozen=True)
class ServiceSpec(Generic[C]):
    """What makes one service: its schema, context, consumers, timers and API."""

    name: str
    schema: str
    # Builds the service's context from the runtime (sync or async); ``runtime.context``.
    context: Callable[[Runtime[C]], Awaitable[C] | C] = _NO_CONTEXT
    subscriptions: Callable[[Runtime[C]], Sequence[Subscription]] = lambda _rt: ()
    timer_handlers: Callable[[Runtime[C]], Mapping[str, TimerAction]] = lambda _rt: {}
    routers: Sequence[APIRouter] = ()
    on_start: Callable[[Runtime[C]], Awaitable[None]] | None = None
    on_stop: Callable[[Runtime[C]], Awaitable[None]] | None = None
    # Only services that integrations call (ingest) accept API keys; they say how to find one.
    api_key_lookup: Callable[[Runtime[C]], ApiKeyLookup] | None = None
    # Extra exposition appended to /metrics (the metrics service's read-model figures).
    extra_metrics: Callable[[Runtime[C]], Awaitable[bytes]] | None = None
    # Request body limits by path prefix, where REVISIT_MAX_BODY_BYTES does not fit.
    body_limits: Mapping[str, int] = field(default_factory=dict)
    title: str = ""
    description: str = ""


def runtime_of(request: Request) -> Runtime[Any]:
    """The running service's runtime (a 503 while the lifespan has not built it yet)."""
    runtime: Runtime[Any] | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        raise HTTPException(503, "the service is still starting")
    return runtime


RuntimeDep = Annotated[Runtime[Any], Depends(runtime_of)]


def context_dependency(kind: type[C]) -> Callable[[Request], C]:
    """A FastAPI dependency returning the service's context, checked to be a ``kind``.

    Each service names it once, in ``api/deps.py``::

        ContextDep = Annotated[IngestContext, Depends(context_dependency(IngestContext))]
    """

    def context(request: Request) -> C:
        found = runtime_of(request).context
        if not isinstance(found, kind):
            raise TypeError(f"the service context is a {type(found).__name__}, not {kind.__name__}")
        return found

    return context


def build_app(spec: ServiceSpec[Any], settings: RevisitSettings) -> FastAPI:
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
            app.state.audit = runtime.audit
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
        # Any route may refuse a malformed request or fail unexpectedly: documented once here.
        responses=error_responses(422, 500),
    )
    install_error_handlers(app)
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
async def run_service(spec: ServiceSpec[C], settings: RevisitSettings) -> AsyncIterator[Runtime[C]]:
    """Start the service's moving parts; on exit stop them consumers-first."""
    engine = make_engine(settings.db, application_name=f"revisit-{spec.name}")
    listen_dsn = plain_dsn(settings.db.database_url)
    clock: Clock
    if settings.revisit_clock == "controlled":
        clock = ControlledClock(engine, listen_dsn)
        await clock.start()
    else:
        clock = SystemClock()
    runtime = Runtime[C](
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
    runtime.relay = relay
    runtime.producer = producer
    audit = AuditWriter(engine, spec.name)
    runtime.audit = audit
    runtime.loops.add("audit", audit.run)
    sweeps = retention.standard(spec.name, spec.schema, engine, settings.retention)
    runtime.retention = sweeps
    runtime.loops.add("pruning", sweeps.run)
    broker = make_broker(settings.kafka, f"revisit-{spec.name}")
    try:
        built = spec.context(runtime)
        runtime.context = cast(C, await built if inspect.isawaitable(built) else built)
        handlers = spec.timer_handlers(runtime)
        if handlers:
            runtime.loops.add("timers", timer_poller(runtime, handlers).run)
        runner = ConsumerRunner(spec.name, runtime.sessions, runtime.inbox, producer)
        subscriptions = spec.subscriptions(runtime)
        for sub in subscriptions:
            attach(broker, runner, sub, settings.kafka)
        runtime.loops.start()
        if spec.on_start is not None:
            await spec.on_start(runtime)
        if subscriptions:
            await broker.start()
        freeze_startup_heap()
        runtime.ready = True
        yield runtime
    finally:
        runtime.ready = False
        # Consumers first (no new work), then background loops, then the service's own
        # resources, then the producer, then the DB.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(broker.stop(), timeout=6)
        with contextlib.suppress(Exception):
            await runtime.loops.stop(within=5)
        if spec.on_stop is not None:
            with contextlib.suppress(Exception):
                await spec.on_stop(runtime)
        aclose = getattr(runtime._context, "aclose", None)
        if callable(aclose):
            with contextlib.suppress(Exception):
                await aclose()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), timeout=3)
        if isinstance(clock, ControlledClock):
            await clock.stop()
        await engine.dispose()


def timer_poller(runtime: Runtime[Any], handlers: Mapping[str, TimerAction]) -> TimerPoller:
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


class Health(BaseModel):
    status: str
    service: str


class Readiness(BaseModel):
    status: str  # ready | not ready
    service: str
    checks: dict[str, str]  # startup, loops, database: "ok" or what is wrong


def health_router(spec: ServiceSpec[Any], settings: RevisitSettings) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> Health:
        return Health(status="ok", service=spec.name)

    @router.get(
        "/readyz",
        summary="Database reachable, consumers started, every required loop running",
        responses={503: {"model": Readiness, "description": "not ready: the checks say why"}},
    )
    async def readyz(request: Request, response: Response) -> Readiness:
        runtime: Runtime[Any] | None = getattr(request.app.state, "runtime", None)
        checks: dict[str, str] = {}
        if runtime is None or not runtime.ready:
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
        return Readiness(status="ready" if ok else "not ready", service=spec.name, checks=checks)

    @router.get(
        "/metrics",
        summary="Prometheus metrics of this process (no PHI in any label)",
        response_class=PlainTextResponse,
        responses={
            200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}},
            401: {"description": "a scrape token is set and was not presented"},
        },
    )
    async def metrics(request: Request) -> Response:
        # Scraped by Prometheus inside the deployment's network. When a scrape token is set
        # (always in production), the scraper must present it; the figures carry no PHI.
        runtime: Runtime[Any] | None = getattr(request.app.state, "runtime", None)
        token = settings.revisit_metrics_token
        if token and request.headers.get("authorization") != f"Bearer {token}":
            return Response("metrics need the scrape token (REVISIT_METRICS_TOKEN)", 401)
        body = generate_latest()
        if runtime is not None and spec.extra_metrics is not None:
            body += await spec.extra_metrics(runtime)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
