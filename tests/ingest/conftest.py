"""Ingest test fixtures: one migrated Postgres, the topics, and one running ingest app per session.

The app is the real composition root (``create_app``) with its lifespan held open for the whole
session: outbox relay, MLLP listener on a free port, retention sweep. Tests isolate themselves
by clinic: every test acts for clinics of its own (``new_clinic``), so what it reads back (rows,
topic records, counts) is its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from sqlalchemy import text

from revisit.migrate import migrate_all
from services.ingest import keys
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.auth import issue_staff_token
from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings
from shared.kafka import ensure_topics
from shared.runtime import Runtime
from shared.topics import EHR_EVENTS

JWT_SECRET = "ingest-tests-" + "s" * 40


@pytest.fixture(scope="session")
async def ingest_infra(pg: Any, kafka: Any) -> tuple[str, str]:
    await migrate_all(pg.dsn)
    await ensure_topics(kafka.bootstrap, partitions=3)
    return str(pg.dsn), str(kafka.bootstrap)


def settings_for(dsn: str, bootstrap: str) -> RevisitSettings:
    return RevisitSettings(
        revisit_profile="test",
        revisit_clock="system",
        db=DatabaseSettings(database_url=dsn, database_pool_size=5),
        kafka=KafkaSettings(kafka_bootstrap_servers=bootstrap, kafka_partitions=3),
        auth=AuthSettings(revisit_jwt_secret=JWT_SECRET),
    )


@dataclass
class Ingest:
    """The running app, a client for it, and helpers to act as a clinic or as an admin."""

    app: FastAPI
    client: httpx.AsyncClient
    runtime: Runtime
    bootstrap: str

    @property
    def mllp_port(self) -> int:
        return int(self.runtime.extras["mllp_port"])

    async def new_clinic(self, label: str = "test") -> tuple[str, str]:
        """A fresh clinic id and an API key for it."""
        clinic = f"c-{label}-{uuid.uuid4().hex[:10]}"
        async with self.runtime.sessions() as session, session.begin():
            issued = await keys.issue_key(session, clinic, label)
        return clinic, issued.api_key

    def admin(self, clinics: list[str] | str = "*") -> dict[str, str]:
        return self.bearer("admin", clinics)

    def bearer(
        self, role: str, clinics: list[str] | str, subject: str = "staff-1"
    ) -> dict[str, str]:
        token = issue_staff_token(
            JWT_SECRET,
            subject=subject,
            role=role,  # type: ignore[arg-type]
            clinics=clinics,  # type: ignore[arg-type]
            ttl=timedelta(hours=1),
        )
        return {"Authorization": f"Bearer {token}"}

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.runtime.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()

    async def events_staged(self, clinic: str) -> int:
        """Every event ever staged for ``clinic`` (each is recorded with its source message in
        the same transaction), so 0 means nothing was, or will be, published."""
        return int(
            await self.scalar(
                "SELECT coalesce(sum(cardinality(event_ids)), 0) FROM ingest.source_messages "
                "WHERE clinic_id = :c",
                c=clinic,
            )
        )

    async def topic_events(
        self, clinic: str, count: int, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """The clinic's records on ehr.events.v1 (waits until ``count`` arrived or timeout)."""
        return await read_clinic(self.bootstrap, f"{clinic}:", count, timeout)


async def read_clinic(
    bootstrap: str, key_prefix: str, count: int, timeout: float
) -> list[dict[str, Any]]:
    """Records on ehr.events.v1 whose key starts with ``key_prefix``, in partition order."""
    import json

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        partitions = consumer.partitions_for_topic(EHR_EVENTS.name) or set()
        if not partitions:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(EHR_EVENTS.name) or set()
        consumer.assign([TopicPartition(EHR_EVENTS.name, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout
        prefix = key_prefix.encode()
        while len(found) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=100, max_records=5000)
            for records in batches.values():
                found += [
                    {**json.loads(r.value), "_headers": {k: v.decode() for k, v in r.headers}}
                    for r in records
                    if (r.key or b"").startswith(prefix)
                ]
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), timeout=5)
    return found


@pytest.fixture(scope="session")
async def ingest(ingest_infra: tuple[str, str]) -> AsyncIterator[Ingest]:
    dsn, bootstrap = ingest_infra
    app = create_app(
        settings_for(dsn, bootstrap),
        IngestSettings(
            mllp_port=0,
            mllp_idle_timeout_seconds=30,
            api_key_cache_seconds=0,
            retention_sweep_seconds=3600,
        ),
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            yield Ingest(app, client, app.state.runtime, bootstrap)


@pytest.fixture
async def clinic(ingest: Ingest) -> tuple[str, dict[str, str]]:
    """A fresh clinic and the X-API-Key header of its integration."""
    clinic_id, key = await ingest.new_clinic()
    return clinic_id, {"X-API-Key": key}
