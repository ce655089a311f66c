"""Integration fixtures for the backbone: migrated Postgres, created topics, scratch schemas.

Tests share one Postgres and one broker per session, so each test works in its own schema
(``create_backbone_v1`` plus an ``effects`` table its handlers write to) and on its own topics,
and nothing one test leaves behind can satisfy or break another's assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from revisit.migrate import migrate_all
from shared.config import KafkaSettings
from shared.events import ehr, new_event
from shared.events.common import EhrSource, SourceSystem
from shared.events.envelope import Envelope
from shared.kafka import ensure_topics, make_producer
from shared.migration_ops import add_timer_retries_v1, create_backbone_v1
from shared.topics import Topic

T0 = datetime(2025, 3, 3, 15, 30, tzinfo=UTC)
CLINIC = "clinic-it"


# --- infrastructure, once per session -----------------------------------------------------------


@pytest.fixture(scope="session")
async def migrated(pg: Any) -> str:
    """Every schema migrated to head; returns the SQLAlchemy DSN."""
    await migrate_all(pg.dsn)
    return str(pg.dsn)


@pytest.fixture(scope="session")
async def topics(kafka: Any) -> str:
    """Every registered topic and its DLQ exist (3 partitions); returns the bootstrap."""
    await ensure_topics(kafka.bootstrap, partitions=3)
    return str(kafka.bootstrap)


@pytest.fixture(scope="session")
async def engine(migrated: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(migrated, pool_size=10, max_overflow=10)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@pytest.fixture(scope="session")
def kafka_settings(kafka: Any) -> KafkaSettings:
    return KafkaSettings(
        kafka_bootstrap_servers=kafka.bootstrap,
        kafka_session_timeout_ms=6000,
        kafka_heartbeat_interval_ms=1000,
        kafka_max_poll_records=100,
    )


@pytest.fixture(scope="session")
async def producer(kafka_settings: KafkaSettings) -> AsyncIterator[AIOKafkaProducer]:
    """One started producer for the session; stopped before the broker fixture stops."""
    prod = make_producer(kafka_settings, "revisit-it")
    await prod.start()
    try:
        yield prod
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(prod.stop(), timeout=5)


# --- per-test scratch schema and topic ----------------------------------------------------------


def _create_backbone(connection: Connection, schema: str) -> None:
    connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    with Operations.context(MigrationContext.configure(connection)):
        create_backbone_v1(schema)
        add_timer_retries_v1(schema)
    # Deliberately not unique on event_id: a duplicate effect must show up as a second row.
    connection.execute(
        text(
            f"CREATE TABLE {schema}.effects (id bigserial PRIMARY KEY, consumer text NOT NULL, "
            "ref text NOT NULL, patient_key text, at timestamptz NOT NULL DEFAULT now())"
        )
    )


@dataclass(frozen=True)
class Scratch:
    """A throw-away service schema with the backbone tables and an ``effects`` table."""

    schema: str
    engine: AsyncEngine

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql.format(s=self.schema)), params)).scalar()

    async def column(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(text(sql.format(s=self.schema)), params)).scalars())

    async def effects(self) -> list[str]:
        """Every effect's ``ref`` in the order written (duplicates included)."""
        return await self.column("SELECT ref FROM {s}.effects ORDER BY id")


@pytest.fixture
async def scratch(engine: AsyncEngine) -> AsyncIterator[Scratch]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    async with engine.begin() as conn:
        await conn.run_sync(_create_backbone, schema)
    try:
        yield Scratch(schema, engine)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
async def fresh_topic(topics: str) -> Topic:
    """A topic (and its DLQ) only this test uses, so what a test reads back is its own."""
    topic = Topic(f"it.{uuid.uuid4().hex[:12]}.v1", "integration test")
    await ensure_topics(topics, partitions=3, names=[topic.name, topic.dlq])
    return topic


# --- events and records -------------------------------------------------------------------------


def patient_key(suffix: str | None = None) -> str:
    return f"{CLINIC}:pt-{suffix or uuid.uuid4().hex[:10]}"


def patient_event(key: str | None = None, record_id: str = "rec-1") -> Envelope[Any]:
    """A valid, registered event (``PatientUpserted``) for one synthetic patient."""
    payload = ehr.PatientUpserted(
        source=EhrSource(system=SourceSystem.fhir, record_id=record_id, source_updated_at=T0)
    )
    return new_event(payload, clinic_id=CLINIC, patient_key=key or patient_key(), occurred_at=T0)


def record(
    topic: str,
    value: bytes,
    key: bytes | None,
    *,
    offset: int,
    partition: int = 0,
    headers: Sequence[tuple[str, bytes]] = (),
) -> ConsumerRecord[bytes, bytes]:
    """A ConsumerRecord as aiokafka hands it to a batch subscriber."""
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=int(time.time() * 1000),
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value),
        headers=list(headers),
    )


def envelope_record(event: Envelope[Any], topic: str, offset: int) -> ConsumerRecord[bytes, bytes]:
    return record(topic, event.to_bytes(), event.patient_key.encode(), offset=offset)


def effect_writer(
    scratch: Scratch, consumer: str = "test"
) -> Callable[[AsyncSession, Sequence[Any]], Awaitable[None]]:
    """A batch handler writing one ``effects`` row per delivery (ref = event_id)."""

    async def handle(session: AsyncSession, deliveries: Sequence[Any]) -> None:
        await session.execute(
            text(
                f"INSERT INTO {scratch.schema}.effects (consumer, ref, patient_key) "
                "VALUES (:c, :ref, :pk)"
            ),
            [
                {"c": consumer, "ref": str(d.envelope.event_id), "pk": d.envelope.patient_key}
                for d in deliveries
            ],
        )

    return handle


# --- reading topics back ------------------------------------------------------------------------


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    keep: Callable[[ConsumerRecord[bytes, bytes]], bool] = lambda _r: True,
    timeout: float = 10.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Records of ``topic`` from the beginning (all partitions, no group) that ``keep`` accepts,
    read until ``until(records)`` holds or ``timeout`` passes (then what was read is returned).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        await consumer.topics()
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout
        while not until(found) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                found.extend(r for r in batch if keep(r))
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), timeout=5)
    return found


def header(rec: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    for key, value in rec.headers:
        if key == name:
            return bytes(value).decode()
    return None


async def wait_for(
    check: Callable[[], Awaitable[bool]], timeout: float = 5.0, every: float = 0.02
) -> bool:
    """Poll ``check`` until it holds or ``timeout`` passes; returns its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)


def keys_of(records: Iterable[ConsumerRecord[bytes, bytes]]) -> list[str]:
    return [r.key.decode() for r in records if r.key is not None]
