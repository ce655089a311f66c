"""Temporary database conditions are retried, never dead-lettered (real Postgres, real broker).

Each failure here is produced for real: a lock held by another connection meets a lock timeout
(55P03), a slow statement meets a statement timeout (57014), a backend is terminated by an
administrator (57P01 / a closed connection), a pool has no connection to give. A valid event
that meets any of them must be redelivered and committed once the condition passes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.consumer import ConsumerRunner, Delivery, Subscription
from shared.inbox import Inbox
from shared.topics import Topic
from tests.integration.conftest import Scratch, effect_writer, envelope_record, patient_event

pytestmark = pytest.mark.integration


class RecordingProducer:
    def __init__(self, inner: AIOKafkaProducer) -> None:
        self.inner = inner
        self.topics: list[str] = []

    async def send(self, topic: str, **kw: Any) -> Any:
        self.topics.append(topic)
        return await self.inner.send(topic, **kw)


async def _hold_lock(engine: AsyncEngine, scratch: Scratch) -> tuple[Any, Any]:
    conn = await engine.connect()
    tx = await conn.begin()
    await conn.execute(text(f"LOCK TABLE {scratch.schema}.effects IN ACCESS EXCLUSIVE MODE"))
    return conn, tx


async def _lock_timeout(session: AsyncSession, scratch: Scratch) -> None:
    conn, tx = await _hold_lock(scratch.engine, scratch)
    try:
        await session.execute(text("SET LOCAL lock_timeout = '100ms'"))
        await session.execute(text(f"LOCK TABLE {scratch.schema}.effects IN ROW EXCLUSIVE MODE"))
    finally:
        await tx.rollback()
        await conn.close()


async def _statement_timeout(session: AsyncSession, scratch: Scratch) -> None:
    await session.execute(text("SET LOCAL statement_timeout = '50ms'"))
    await session.execute(text("SELECT pg_sleep(1)"))


async def _terminated(session: AsyncSession, scratch: Scratch) -> None:
    pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with scratch.engine.connect() as other:
        await other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    await session.execute(text("SELECT 1"))


@pytest.mark.parametrize(
    "fault",
    [_lock_timeout, _statement_timeout, _terminated],
    ids=["lock-timeout-55P03", "statement-timeout-57014", "terminated-backend"],
)
async def test_a_temporary_database_condition_is_retried_and_never_dead_lettered(
    fault: Any,
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    producer: AIOKafkaProducer,
    fresh_topic: Topic,
) -> None:
    events = [patient_event() for _ in range(3)]
    write = effect_writer(scratch)
    calls = 0

    async def handler(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:  # the batch and its one-by-one replay both meet the condition
            await fault(session, scratch)
        await write(session, deliveries)

    recorder = RecordingProducer(producer)
    runner = ConsumerRunner("it", sessions, Inbox(scratch.schema), recorder)
    runner.backoff.base = 0.01
    sub = Subscription((fresh_topic,), "transient", handler)
    records = [envelope_record(e, fresh_topic.name, offset=i) for i, e in enumerate(events)]

    for _ in range(5):  # the broker redelivers until the batch commits
        with contextlib.suppress(Exception):
            await runner.handle_records(sub, records)
            break
    assert recorder.topics == []  # nothing dead-lettered
    assert sorted(await scratch.effects()) == sorted(str(e.event_id) for e in events)


async def test_an_exhausted_connection_pool_is_retried_and_never_dead_lettered(
    scratch: Scratch,
    migrated: str,
    producer: AIOKafkaProducer,
    fresh_topic: Topic,
) -> None:
    tight = create_async_engine(migrated, pool_size=1, max_overflow=0, pool_timeout=0.2)
    sessions = async_sessionmaker(tight, expire_on_commit=False)
    event = patient_event()
    recorder = RecordingProducer(producer)
    runner = ConsumerRunner("it", sessions, Inbox(scratch.schema), recorder)
    runner.backoff.base = 0.01
    sub = Subscription((fresh_topic,), "pool", effect_writer(scratch))
    busy = await tight.connect()  # the only connection is taken
    try:
        with pytest.raises(Exception):  # noqa: B017 - whichever class the pool raises
            await runner.handle_records(sub, [envelope_record(event, fresh_topic.name, 0)])
        assert recorder.topics == []
    finally:
        await busy.close()
    await runner.handle_records(sub, [envelope_record(event, fresh_topic.name, 0)])
    assert recorder.topics == []
    assert await scratch.effects() == [str(event.event_id)]
    await tight.dispose()


async def test_a_lock_held_elsewhere_delays_the_batch_until_it_is_released(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    producer: AIOKafkaProducer,
    fresh_topic: Topic,
) -> None:
    """The lock timeout comes from a real competing transaction, released a moment later."""
    event = patient_event()
    write = effect_writer(scratch)

    async def handler(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        await session.execute(text("SET LOCAL lock_timeout = '100ms'"))
        await write(session, deliveries)

    recorder = RecordingProducer(producer)
    runner = ConsumerRunner("it", sessions, Inbox(scratch.schema), recorder)
    runner.backoff.base = 0.05
    sub = Subscription((fresh_topic,), "locked", handler)
    conn, tx = await _hold_lock(engine, scratch)
    attempts = 0
    try:
        for _ in range(3):
            attempts += 1
            with contextlib.suppress(Exception):
                await runner.handle_records(sub, [envelope_record(event, fresh_topic.name, 0)])
    finally:
        await tx.rollback()
        await conn.close()
    await runner.handle_records(sub, [envelope_record(event, fresh_topic.name, 0)])
    assert recorder.topics == []
    assert await scratch.effects() == [str(event.event_id)]
    await asyncio.sleep(0)
