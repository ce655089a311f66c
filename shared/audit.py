"""Who read or changed which patient's data through the APIs: written once, for every service.

``build_app`` wraps every service's app in :class:`AuditMiddleware`. After each request to a
route (health probes, scrapes and API docs aside) it records who asked (the principal the
authenticator found: subject, role, clinic), what (the route template, the patient_key and any
other object the path names), when, from where (the client address) and the outcome (the HTTP
status), refused requests included. A route that touches patients its path does not name (a
batch of EHR events, a webhook) says which with :func:`note_patients`.

Rows are written by :class:`AuditWriter` in batches, off the request path: one call of
``audit.append`` per batch (which chains the rows; see the migration) every
``flush_interval`` seconds, so a request pays for a dict and a queue append, not a round trip
and a lock shared by every service. The price is that a crash loses at most the last interval's
rows; a write that fails is retried with the rows kept in order, and ``revisit_audit_pending``
shows a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.faults import Backoff

log = logging.getLogger(__name__)

# Not patient data, and probed or scraped every few seconds.
UNAUDITED_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
)
MAX_PATIENTS_PER_REQUEST = 1000
_STATE_PATIENTS = "audit_patients"
_STATE_SUBJECT = "audit_subject"

ROWS_WRITTEN = Counter(
    "revisit_audit_rows_written_total", "Audit rows appended to the chain", ["service"]
)
WRITE_FAILURES = Counter(
    "revisit_audit_write_failures_total", "Audit batches that failed (retried)", ["service"]
)
DROPPED = Counter(
    "revisit_audit_rows_dropped_total", "Audit rows dropped: the backlog was full", ["service"]
)
PENDING = Gauge("revisit_audit_pending", "Audit rows waiting to be written", ["service"])


def note_patients(request: Request, patient_keys: Iterable[str]) -> None:
    """Record that this request touches these patients (for routes whose path names none)."""
    noted = list(getattr(request.state, _STATE_PATIENTS, None) or [])
    for key in patient_keys:
        if key and key not in noted and len(noted) < MAX_PATIENTS_PER_REQUEST:
            noted.append(key)
    setattr(request.state, _STATE_PATIENTS, noted)


def note_subject(request: Request, subject: str) -> None:
    """Who called, for routes without a principal (a provider's signed webhook)."""
    setattr(request.state, _STATE_SUBJECT, subject)


class AuditWriter:
    """Collects audit rows in memory and appends them to the chain in batches."""

    def __init__(
        self,
        engine: AsyncEngine,
        service: str,
        *,
        flush_interval: float = 0.2,
        batch_size: int = 500,
        max_pending: int = 100_000,
    ) -> None:
        self.engine = engine
        self.service = service
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_pending = max_pending
        self._pending: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._backoff = Backoff(base=0.5, cap=10.0)

    def record(self, entry: dict[str, Any]) -> None:
        if len(self._pending) >= self.max_pending:
            DROPPED.labels(self.service).inc()
            return
        self._pending.append(entry)
        PENDING.labels(self.service).set(len(self._pending))
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> int:
        """Write everything pending now (in batches); the number of rows written."""
        written = 0
        # One flush at a time (the loop's, a shutdown's, a test's), so no row goes twice.
        async with self._flushing:
            while self._pending:
                size = min(self.batch_size, len(self._pending))
                batch = [self._pending.popleft() for _ in range(size)]
                try:
                    async with self.engine.begin() as conn:
                        await conn.execute(
                            text("SELECT audit.append(CAST(:entries AS jsonb))"),
                            {"entries": json.dumps(batch, default=str)},
                        )
                except BaseException:
                    self._pending.extendleft(reversed(batch))  # kept, in order, for the retry
                    raise
                written += len(batch)
                ROWS_WRITTEN.labels(self.service).inc(len(batch))
                PENDING.labels(self.service).set(len(self._pending))
        return written

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while True:
            stopping = stop.is_set()
            try:
                await self.flush()
                failures = 0
            except Exception as exc:  # kept in order and tried again; never lost silently
                WRITE_FAILURES.labels(self.service).inc()
                log.warning("audit rows not written yet", extra={"error": type(exc).__name__})
                if stopping:
                    log.error("audit rows lost at shutdown", extra={"rows": self.pending})
                    return
                await self._sleep(stop, self._backoff.delay(failures))
                failures += 1
                continue
            if stopping:
                return
            await self._sleep(stop, self.flush_interval)

    async def _sleep(self, stop: asyncio.Event, seconds: float) -> None:
        self._wake.clear()
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting


def _clinic_of(patient_key: str | None) -> str | None:
    return patient_key.split(":", 1)[0] if patient_key and ":" in patient_key else None


def entries_for(
    service: str, scope: Scope, status: int, at: datetime | None = None
) -> list[dict[str, Any]]:
    """The audit rows one finished request makes (one per patient it touched, at least one)."""
    state: Mapping[str, Any] = scope.get("state") or {}
    params: Mapping[str, Any] = scope.get("path_params") or {}
    route = str(getattr(scope.get("route"), "path", None) or "(no route)")
    query = Request(scope).query_params
    principal = state.get("principal")
    clinics = getattr(principal, "clinics", None)
    patients: list[str] = []
    for found in (params.get("patient_key"), query.get("patient_key")):
        if found and found not in patients:
            patients.append(str(found))
    patients += [p for p in state.get(_STATE_PATIENTS) or () if p not in patients]
    objects = ";".join(
        f"{name}={value}"
        for name, value in sorted(params.items())
        if name not in ("patient_key", "clinic_id")
    )
    clinic = params.get("clinic_id") or query.get("clinic_id")
    # The clinic whose data was touched: named, else the patient's, else the caller's only one.
    fallback = next(iter(clinics)) if clinics is not None and len(clinics) == 1 else None
    client = scope.get("client")
    method = str(scope.get("method", ""))
    base = {
        "at": (at or datetime.now(UTC)).isoformat(),
        "service": service,
        "subject": getattr(principal, "subject", None) or state.get(_STATE_SUBJECT) or "anonymous",
        "role": getattr(principal, "role", None),
        "principal_kind": getattr(principal, "kind", None),
        "action": "read" if method in ("GET", "HEAD") else "change",
        "method": method,
        "route": route,
        "object_id": objects or None,
        "client": client[0] if client else None,
        "status": status,
    }
    return [
        {**base, "patient_key": patient, "clinic_id": clinic or _clinic_of(patient) or fallback}
        for patient in patients or [None]  # type: ignore[list-item]
    ]


class AuditMiddleware:
    """Records every API request of a service through the writer on ``app.state.audit``."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNAUDITED_PATHS:
            await self.app(scope, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            writer = getattr(getattr(scope.get("app"), "state", None), "audit", None)
            # A path no route matched touched nothing (and scanners would fill the log).
            if isinstance(writer, AuditWriter) and scope.get("route") is not None:
                for entry in entries_for(self.service, scope, status):
                    writer.record(entry)
