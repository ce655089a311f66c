"""Every service in this process on a database of its own, and one synthetic patient through them.

The patient's details are planted on purpose (a unique name, phone, e-mail, birth date, record
number, message words, a case note) so a test can look for them afterwards: in every log line,
every exported span, every service's /metrics, and every column of every table.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from revisit.migrate import migrate_all
from services.escalation.app import create_app as escalation_app
from services.ingest import keys
from services.ingest.app import create_app as ingest_app
from services.messenger.app import create_app as messenger_app
from services.messenger.settings import MessengerSettings
from services.metrics.app import create_app as metrics_app
from services.segmenter.app import create_app as segmenter_app
from services.sequencer.app import create_app as sequencer_app
from shared.auth import issue_staff_token
from shared.clock import set_clock
from shared.config import (
    AuthSettings,
    DatabaseSettings,
    KafkaSettings,
    RevisitSettings,
    TelemetrySettings,
)
from shared.kafka import ensure_topics
from shared.logging import configure_logging
from shared.telemetry import attach_exporter, setup_tracing

SECRET = "patient-world-secret-" + "y" * 24
TWILIO_TOKEN = "patient-world-twilio-token"
PUBLIC_URL = "https://messenger.world.test"
# A Tuesday, 09:00 in Chicago: the message goes out inside the patient's allowed hours.
TUESDAY = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
PRACTICE_SMS = "+15125550199"


@dataclass(frozen=True)
class Planted:
    """One synthetic patient's identifying details, unique enough to grep for."""

    clinic: str
    patient_id: str
    record_number: str
    given: str
    family: str
    phone: str
    email: str
    birth_date: str
    reply: str
    staff_words: str
    note: str

    @property
    def patient_key(self) -> str:
        return f"{self.clinic}:{self.patient_id}"

    def values(self) -> dict[str, str]:
        """What must never appear outside the patient's own rows (E.164 and as written)."""
        return {
            "patient id": self.patient_id,
            "record number": self.record_number,
            "given name": self.given,
            "family name": self.family,
            "phone": self.phone,
            "phone digits": self.phone[-7:],
            "email": self.email,
            "birth date": self.birth_date,
            "reply words": "Ventadorn-bleeding-since",
            "staff words": "Qorvalith",
            "case note": "Zephyrine",
        }


def planted() -> Planted:
    tag = uuid.uuid4().hex[:6]
    return Planted(
        clinic=f"clinic-w{tag}",
        patient_id=f"ptw{tag}",
        record_number=f"MRN{tag}77",
        given=f"Marisol{tag}",
        family=f"Ventadorn{tag}",
        phone="+1512555" + str(uuid.uuid4().int)[:4],
        email=f"marisol.{tag}@example.org",
        birth_date="1979-03-14",
        reply="",
        staff_words="",
        note="",
    )


@dataclass
class World:
    apps: dict[str, FastAPI]
    clients: dict[str, httpx.AsyncClient]
    engine: AsyncEngine
    dsn: str
    logs: io.StringIO
    spans: InMemorySpanExporter
    api_key: str = ""
    patient: Planted = field(default_factory=planted)
    case_id: str = ""

    def staff(self, role: str = "admin", *, subject: str = "dr-quill") -> dict[str, str]:
        token = issue_staff_token(
            SECRET,
            subject=subject,
            role=role,  # type: ignore[arg-type]
            clinics=[self.patient.clinic],
            ttl=timedelta(hours=1),
        )
        return {"Authorization": f"Bearer {token}"}

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(text(sql), params)).mappings().all()]

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def metrics_text(self) -> str:
        texts = [(await c.get("/metrics")).text for c in self.clients.values()]
        return "\n".join(texts)


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


async def _fresh_database(pg: Any) -> str:
    name = f"world_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(pg.dsn, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    dsn = make_url(pg.dsn).set(database=name).render_as_string(hide_password=False)
    await migrate_all(dsn)
    return dsn


@contextlib.asynccontextmanager
async def running_world(pg: Any, kafka: Any) -> AsyncIterator[World]:
    dsn = await _fresh_database(pg)
    await ensure_topics(kafka.bootstrap, 3)
    engine = create_async_engine(dsn, hide_parameters=True)
    await set_clock(engine, TUESDAY, rate=1.0)
    settings = RevisitSettings(
        db=DatabaseSettings(database_url=dsn, database_pool_size=4),
        kafka=KafkaSettings(
            kafka_bootstrap_servers=kafka.bootstrap,
            kafka_session_timeout_ms=6000,
            kafka_heartbeat_interval_ms=1000,
            kafka_max_poll_records=100,
        ),
        auth=AuthSettings(revisit_jwt_secret=SECRET),
        telemetry=TelemetrySettings(revisit_pseudonym_key="w" * 40),
        revisit_profile="test",
        revisit_clock="controlled",
        revisit_poll_interval_ms=50,
    )
    logs = io.StringIO()
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    configure_logging("world", level="INFO", stream=logs)
    spans = InMemorySpanExporter()
    attach_exporter(setup_tracing("world", settings.telemetry), spans, batch=False)
    messenger = MessengerSettings(
        twilio_auth_token=TWILIO_TOKEN, public_url=PUBLIC_URL, lease_seconds=4.0
    )
    apps = {
        "ingest": ingest_app(settings),
        "segmenter": segmenter_app(settings),
        "sequencer": sequencer_app(settings),
        "messenger": messenger_app(settings, messenger),
        "escalation": escalation_app(settings),
        "metrics": metrics_app(settings),
    }
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = {}
            for name, app in apps.items():
                await stack.enter_async_context(app.router.lifespan_context(app))
                base = PUBLIC_URL if name == "messenger" else f"http://{name}.test"
                clients[name] = await stack.enter_async_context(
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)
                )
            world = World(apps, clients, engine, dsn, logs, spans)
            async with apps["ingest"].state.runtime.sessions() as session, session.begin():
                world.api_key = (
                    await keys.issue_key(session, world.patient.clinic, "world")
                ).api_key
            yield world
    finally:
        # Lifespans are closed (and their last audit rows flushed) before logging is restored.
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        await engine.dispose()
