"""The metrics service, run for real against the session's Postgres and broker.

Started once per module (a consumer-group join takes seconds); events are published to the
topics they belong on, keyed by patient, exactly as the outbox relay publishes them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from services.metrics.app import create_app
from services.metrics.settings import MetricsSettings
from shared.auth import issue_staff_token
from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings
from shared.events import Envelope, topic_for

SECRET = "metrics-test-secret-" + "x" * 30


@dataclass
class RunningMetrics:
    app: FastAPI
    client: httpx.AsyncClient
    producer: AIOKafkaProducer
    bootstrap: str
    dsn: str

    async def publish(self, events: Iterable[Envelope[Any]]) -> None:
        for event in events:
            await self.producer.send(
                topic_for(event.type).name, event.to_bytes(), key=event.patient_key.encode()
            )
        await self.producer.flush()

    async def publish_raw(self, topic: str, value: bytes, key: bytes) -> None:
        await (await self.producer.send(topic, value, key=key))

    def token(self, *clinics: str, role: str = "viewer") -> dict[str, str]:
        token = issue_staff_token(
            SECRET,
            subject="analyst-1",
            role=role,  # type: ignore[arg-type]
            clinics=list(clinics) if clinics else "*",
            ttl=timedelta(hours=1),
        )
        return {"Authorization": f"Bearer {token}"}


def settings_for(pg: Any, kafka: Any) -> RevisitSettings:
    return RevisitSettings(
        revisit_profile="test",
        db=DatabaseSettings(database_url=pg.dsn),
        kafka=KafkaSettings(kafka_bootstrap_servers=kafka.bootstrap, kafka_partitions=3),
        auth=AuthSettings(revisit_jwt_secret=SECRET),
    )


@pytest.fixture(scope="session")
async def metrics_infra(pg: Any, kafka: Any) -> tuple[Any, Any]:
    from revisit.migrate import migrate_all
    from shared.kafka import ensure_topics

    await migrate_all(pg.dsn)
    await ensure_topics(kafka.bootstrap, 3)
    return pg, kafka


@pytest.fixture(scope="module")
async def metrics(metrics_infra: tuple[Any, Any]) -> AsyncIterator[RunningMetrics]:
    pg, kafka = metrics_infra
    app = create_app(settings_for(pg, kafka), MetricsSettings(lag_interval_s=0.5))
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, linger_ms=5)
    await producer.start()
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
                yield RunningMetrics(app, client, producer, kafka.bootstrap, pg.dsn)
    finally:
        await producer.stop()


def clinic(prefix: str = "clinic-m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something truthy; that value (or the last one)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(0.1)
