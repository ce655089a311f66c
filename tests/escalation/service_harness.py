"""The escalation service run for real in a test: Postgres, the broker, the controlled clock,
and its HTTP API through an in-process client."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.escalation.app import build_spec
from services.escalation.settings import EscalationSettings
from shared.auth import Role, issue_staff_token
from shared.clock import read_clock, set_clock
from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings
from shared.events import parse_event
from shared.events.envelope import Envelope
from shared.kafka import ensure_topics
from shared.runtime import build_app
from shared.topics import ESCALATIONS
from tests.escalation.helpers import forget_clinics

T0 = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # Tuesday 22:00 in New York: after hours
JWT = "escalation-test-secret-" + "x" * 20


@dataclass
class Service:
    client: httpx.AsyncClient
    engine: AsyncEngine
    producer: AIOKafkaProducer
    bootstrap: str
    clinic: str = field(default_factory=lambda: f"clinic-esc-{uuid.uuid4().hex[:6]}")
    other: str = field(default_factory=lambda: f"clinic-esc-{uuid.uuid4().hex[:6]}")
    shared: dict[str, Any] = field(default_factory=dict)

    def auth(
        self, subject: str, role: Role = "operator", clinic: str | None = None
    ) -> dict[str, str]:
        token = issue_staff_token(
            JWT,
            subject=subject,
            role=role,
            clinics=[clinic or self.clinic],
            ttl=timedelta(hours=1),
        )
        return {"Authorization": f"Bearer {token}"}

    async def publish(self, event: Envelope[Any]) -> None:
        await self.producer.send_and_wait(
            ESCALATIONS.name, event.to_bytes(), key=event.patient_key.encode()
        )

    async def sandbox_pages(
        self, escalation_id: str, clinic: str | None = None
    ) -> list[dict[str, Any]]:
        r = await self.client.get(
            "/sandbox/pages",
            params={"escalation_id": escalation_id},
            headers=self.auth("viewer-1", "viewer", clinic),
        )
        assert r.status_code == 200
        pages: list[dict[str, Any]] = r.json()["pages"]
        return pages

    async def lifecycle(
        self, escalation_id: str, until: Callable[[list[Envelope[Any]]], bool]
    ) -> list[Envelope[Any]]:
        """This case's events on escalations.v1, read back from the broker."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        found: list[Envelope[Any]] = []
        try:
            parts = consumer.partitions_for_topic(ESCALATIONS.name) or set()
            if not parts:
                await consumer.topics()
                parts = consumer.partitions_for_topic(ESCALATIONS.name) or set()
            consumer.assign([TopicPartition(ESCALATIONS.name, p) for p in sorted(parts)])
            await consumer.seek_to_beginning()
            deadline = time.monotonic() + 10
            while not until(found) and time.monotonic() < deadline:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    for record in batch:
                        event = parse_event(record.value or b"")
                        if getattr(event.payload, "escalation_id", None) == escalation_id:
                            found.append(event)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), timeout=5)
        return found


def of_type(kind: str, count: int = 1) -> Callable[[list[Envelope[Any]]], bool]:
    return lambda events: sum(e.type == kind for e in events) >= count


@contextlib.asynccontextmanager
async def running_service(
    escalation_dsn: str, bootstrap: str, *, consume: bool = True
) -> AsyncIterator[Service]:
    """The service on the controlled clock, frozen at T0; the clock is put back afterwards.

    ``consume=False`` serves only the API and the timers (no consumer group to join).
    """
    await ensure_topics(bootstrap, 3)
    engine = create_async_engine(escalation_dsn, pool_size=3)
    saved = await read_clock(engine)
    await set_clock(engine, T0, rate=0)
    settings = RevisitSettings(
        db=DatabaseSettings(database_url=escalation_dsn),
        kafka=KafkaSettings(kafka_bootstrap_servers=bootstrap, kafka_max_poll_records=100),
        auth=AuthSettings(revisit_jwt_secret=JWT),
        revisit_clock="controlled",
        revisit_poll_interval_ms=50,
    )
    config = EscalationSettings(
        dispatch_interval_ms=50,
        public_url="http://127.0.0.1:8005",
        outbound_allow_networks="127.0.0.1/32",  # the tests' recording servers
    )
    spec = build_spec(config)
    if not consume:
        spec = dataclasses.replace(spec, subscriptions=lambda _rt: ())
    app = build_app(spec, settings)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id="esc-test")
    await producer.start()
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://escalation") as c:
                yield Service(c, engine, producer, bootstrap)
    finally:
        await producer.stop()
        await forget_clinics(engine, "clinic-esc-")
        virtual, real, rate = saved
        await set_clock(engine, virtual + timedelta(seconds=(time.time() - real) * rate), rate=rate)
        await engine.dispose()
