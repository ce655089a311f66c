"""Transactional outbox: stage events in the caller's transaction; a relay publishes them.

Handlers never talk to Kafka. They stage outgoing events in the same Postgres transaction as
their state change, so either both happen or neither does. The relay reads committed rows in
id order, publishes them in batches, and deletes what the broker acknowledged. A crash between
publish and delete republishes the batch; consumers drop the duplicates through their inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from shared.events import topic_for
from shared.events.envelope import Envelope
from shared.telemetry import inject_headers

log = logging.getLogger(__name__)


class Sendable(Protocol):
    """The part of a Kafka producer the relay needs (aiokafka's AIOKafkaProducer fits)."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]: ...


def outbox_channel(schema: str) -> str:
    return f"outbox_{schema}"


class Outbox:
    """Stages events for one service schema."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = text(
            f"INSERT INTO {schema}.outbox (event_id, topic, message_key, event_type, body, headers)"
            " VALUES (:event_id, :topic, :key, :type, :body, CAST(:headers AS jsonb))"
        )
        self._notify = text(f"SELECT pg_notify('{outbox_channel(schema)}', '')")

    async def stage(
        self,
        session: AsyncSession | AsyncConnection,
        events: Iterable[Envelope[Any]],
        *,
        headers: dict[str, str] | None = None,
    ) -> int:
        """Stage ``events`` (each to its type's topic) in the caller's transaction.

        Trace context is taken from ``headers`` when given (a batch handler passes the headers
        of the event that caused these), else from the current span.
        """
        trace = headers if headers is not None else inject_headers()
        return await self.stage_batch(session, ((event, trace) for event in events))

    async def stage_batch(
        self,
        session: AsyncSession | AsyncConnection,
        staged: Iterable[tuple[Envelope[Any], Mapping[str, str]]],
    ) -> int:
        """Stage events that each carry their own trace headers, in one INSERT and one NOTIFY.

        For batch handlers: pass every caused event with the ``trace_headers`` of the delivery
        that caused it, once per batch, instead of calling :meth:`stage` per delivery (two
        statements per event). Rows keep the order given, so the relay publishes in that order.
        """
        rows = [
            {
                "event_id": event.event_id,
                "topic": topic_for(event.type).name,
                "key": event.patient_key,
                "type": event.type,
                "body": event.to_bytes(),
                "headers": json.dumps(dict(trace)),
            }
            for event, trace in staged
        ]
        if not rows:
            return 0
        await session.execute(self._insert, rows)
        # NOTIFY is delivered at commit and collapsed per transaction: one wake-up per batch.
        await session.execute(self._notify)
        return len(rows)


class OutboxRelay:
    """Publishes one schema's outbox to Kafka, in order, in batches.

    Only one relay per schema publishes at a time (a Postgres advisory lock), so events for one
    patient leave in the order they were committed even with several replicas running.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        schema: str,
        producer: Sendable,
        *,
        listen_dsn: str,
        batch_size: int = 500,
        idle_wait: float = 1.0,
        on_published: Callable[[int], object] | None = None,
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.producer = producer
        self.listen_dsn = listen_dsn
        self.batch_size = min(batch_size, 500)
        self.idle_wait = idle_wait
        self.published = 0
        self._on_published = on_published
        self._wake = asyncio.Event()
        self._select = text(
            f"SELECT id, topic, message_key, body, headers FROM {schema}.outbox "
            "ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
        )
        self._delete = text(f"DELETE FROM {schema}.outbox WHERE id = ANY(:ids)")

    def wake(self) -> None:
        self._wake.set()

    async def publish_once(self) -> int:
        """Publish up to one batch; returns how many were published."""
        async with self.engine.begin() as conn:
            rows = (await conn.execute(self._select, {"n": self.batch_size})).all()
            if not rows:
                return 0
            futures = [
                await self.producer.send(
                    row.topic,
                    value=row.body,
                    key=row.message_key.encode(),
                    headers=[(k, str(v).encode()) for k, v in (row.headers or {}).items()],
                )
                for row in rows
            ]
            await asyncio.gather(*futures)
            await conn.execute(self._delete, {"ids": [row.id for row in rows]})
        self.published += len(rows)
        if self._on_published is not None:
            self._on_published(len(rows))
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        listener = await self._listen()
        lock_conn = await asyncpg.connect(self.listen_dsn)
        try:
            await self._become_leader(lock_conn, stop)
            backoff = 0.2
            while not stop.is_set():
                # Cleared before publishing, not after: a NOTIFY that arrives mid-batch must
                # not wait out idle_wait.
                self._wake.clear()
                try:
                    count = await self.publish_once()
                    backoff = 0.2
                except Exception as exc:  # broker or database hiccup: keep the rows, retry
                    log.warning(
                        "outbox relay retrying",
                        extra={"schema": self.schema, "error": exc.__class__.__name__},
                    )
                    await _sleep_or_stop(stop, backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                if count < self.batch_size:
                    await _wait_any(stop, self._wake, self.idle_wait)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), timeout=2)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(lock_conn.close(), timeout=2)

    async def _listen(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self.listen_dsn)
        await conn.add_listener(outbox_channel(self.schema), lambda *_: self._wake.set())
        return conn

    async def _become_leader(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        key = f"outbox:{self.schema}"
        while not stop.is_set():
            if await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
                return
            await _sleep_or_stop(stop, 1.0)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
