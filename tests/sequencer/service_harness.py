"""The sequencer running for real (Postgres, the broker, the controlled clock, its HTTP API), and
a watcher that reads what it publishes."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.sequencer.app import create_app
from services.sequencer.settings import SequencerSettings
from shared.auth import issue_staff_token
from shared.clock import read_clock, set_clock
from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings
from shared.events import Payload, new_event, parse_event, topic_for
from shared.events.envelope import Envelope
from shared.kafka import ensure_topics
from shared.telemetry import inject_headers, kafka_headers
from shared.topics import COMMANDS, SEQUENCES

JWT = "sequencer-test-secret-" + "x" * 24


class Watcher:
    """Collects every event of one clinic on the sequencer's output topics, with headers."""

    def __init__(self, bootstrap: str, clinic_id: str) -> None:
        self.bootstrap = bootstrap
        self.clinic_id = clinic_id
        self.events: list[tuple[Envelope[Any], dict[str, str]]] = []
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        self._consumer = consumer
        parts = []
        for topic in (COMMANDS.name, SEQUENCES.name):
            found = consumer.partitions_for_topic(topic) or set()
            if not found:
                await consumer.topics()
                found = consumer.partitions_for_topic(topic) or set()
            parts += [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(parts)
        await consumer.seek_to_beginning()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for r in records:
                    event = parse_event(r.value or b"")
                    if event.clinic_id == self.clinic_id:
                        headers = {k: v.decode() for k, v in (r.headers or ())}
                        self.events.append((event, headers))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._consumer.stop(), timeout=5)

    def of(self, patient_key: str, kind: str | None = None) -> list[Envelope[Any]]:
        return [
            e
            for e, _ in self.events
            if e.patient_key == patient_key and (kind is None or e.type == kind)
        ]

    def headers_of(self, event_id: uuid.UUID) -> dict[str, str]:
        return next(h for e, h in self.events if e.event_id == event_id)

    async def wait(
        self, patient_key: str, kind: str, count: int = 1, timeout: float = 10.0
    ) -> list[Envelope[Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of(patient_key, kind)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"{count} x {kind} for {patient_key} not seen in {timeout} s")


@dataclass
class Service:
    client: httpx.AsyncClient
    engine: AsyncEngine
    producer: AIOKafkaProducer
    watcher: Watcher
    clinic_id: str
    shared: dict[str, Any] = field(default_factory=dict)

    def auth(self, role: str = "operator", clinics: list[str] | None = None) -> dict[str, str]:
        token = issue_staff_token(
            JWT,
            subject=f"{role}-1",
            role=role,  # type: ignore[arg-type]
            clinics=clinics or [self.clinic_id],  # type: ignore[arg-type]
            ttl=timedelta(hours=1),
        )
        return {"Authorization": f"Bearer {token}"}

    def key(self, patient: str) -> str:
        return f"{self.clinic_id}:{patient}"

    async def publish(
        self, patient: str, payload: Payload, at: datetime, headers: dict[str, str] | None = None
    ) -> Envelope[Any]:
        event = new_event(
            payload, clinic_id=self.clinic_id, patient_key=self.key(patient), occurred_at=at
        )
        await self.producer.send_and_wait(
            topic_for(event.type).name,
            event.to_bytes(),
            key=event.patient_key.encode(),
            headers=kafka_headers(headers or inject_headers()),
        )
        return event

    async def set_time(self, at: datetime) -> None:
        await set_clock(self.engine, at, rate=0)
        await asyncio.sleep(0.3)  # the NOTIFY reaches the service's clock; timers wake


@contextlib.asynccontextmanager
async def running_sequencer(dsn: str, bootstrap: str, start: datetime) -> AsyncIterator[Service]:
    await ensure_topics(bootstrap, 3)
    engine = create_async_engine(dsn, pool_size=2)
    saved = await read_clock(engine)
    await set_clock(engine, start, rate=0)
    settings = RevisitSettings(
        db=DatabaseSettings(database_url=dsn),
        kafka=KafkaSettings(kafka_bootstrap_servers=bootstrap, kafka_max_poll_records=100),
        auth=AuthSettings(revisit_jwt_secret=JWT),
        revisit_clock="controlled",
        revisit_poll_interval_ms=50,
    )
    app = create_app(settings, SequencerSettings())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, client_id="sequencer-test")
    await producer.start()
    clinic = f"clinic-seq-{uuid.uuid4().hex[:6]}"
    watcher = Watcher(bootstrap, clinic)
    await watcher.start()
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sequencer") as c:
                yield Service(c, engine, producer, watcher, clinic)
    finally:
        await watcher.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), timeout=5)
        virtual, real, rate = saved
        await set_clock(engine, virtual + timedelta(seconds=(time.time() - real) * rate), rate=rate)
        await engine.dispose()


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.1)
