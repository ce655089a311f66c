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
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Protocol

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from shared.events import topic_for
from shared.events.envelope import Envelope
from shared.faults import Backoff, is_transient
from shared.loops import sleep_or_stop, wait_any
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

    Only one relay per schema publishes at a time, so events for one patient leave in the
    order they were committed even with several replicas running. The leader holds a Postgres
    advisory lock on its own connection and runs every publishing transaction on that same
    connection: if the connection drops (a database restart, a failover, a killed backend) the
    lock is gone and so is the leader's next transaction, so it can never publish without the
    lock. It then steps down (``run`` raises; the process's loop supervisor starts it again,
    and it queues for the lock like any standby).
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
        on_leader: Callable[[bool], object] | None = None,
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.producer = producer
        self.listen_dsn = listen_dsn
        self.batch_size = min(batch_size, 500)
        self.idle_wait = idle_wait
        self.lock_poll_s = 1.0
        self.published = 0
        self.leading = False
        self._on_published = on_published
        self._on_leader = on_leader
        self._wake = asyncio.Event()
        self._select = text(
            f"SELECT id, topic, message_key, body, headers FROM {schema}.outbox "
            "ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
        )
        self._delete = text(f"DELETE FROM {schema}.outbox WHERE id = ANY(:ids)")
        self._lock = text("SELECT pg_try_advisory_lock(hashtext(:k))")
        self._key = f"outbox:{schema}"

    def wake(self) -> None:
        self._wake.set()

    async def publish_once(self, conn: AsyncConnection | None = None) -> int:
        """Publish up to one batch (on ``conn``, the leader's, when given); returns how many."""
        if conn is None:
            async with self.engine.connect() as own:
                return await self.publish_once(own)
        async with conn.begin():
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
        try:
            async with self.engine.connect() as conn, _discarded_after(conn):
                if not await self._become_leader(conn, stop):
                    return
                self._lead(True)
                backoff = Backoff(base=0.2, cap=5.0)
                failures = 0
                while not stop.is_set():
                    # Cleared before publishing, not after: a NOTIFY that arrives mid-batch
                    # must not wait out idle_wait.
                    self._wake.clear()
                    try:
                        count = await self.publish_once(conn)
                        failures = 0
                    except Exception as exc:
                        if conn.invalidated or conn.closed or not is_transient(exc):
                            raise  # the lock went with the connection: step down
                        # The broker is away: the rows stay, tried again after a backoff.
                        log.warning(
                            "outbox relay retrying",
                            extra={"schema": self.schema, "error": exc.__class__.__name__},
                        )
                        await sleep_or_stop(stop, backoff.delay(failures))
                        failures += 1
                        continue
                    if count < self.batch_size:
                        if listener.is_closed():
                            raise ConnectionError("the outbox listener connection closed")
                        await wait_any(stop, self._wake, self.idle_wait)
        finally:
            self._lead(False)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), timeout=2)

    def _lead(self, leading: bool) -> None:
        if leading != self.leading:
            log.info(
                "outbox relay leads" if leading else "outbox relay steps down",
                extra={"schema": self.schema},
            )
        self.leading = leading
        if self._on_leader is not None:
            self._on_leader(leading)

    async def _listen(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(self.listen_dsn)
        await conn.add_listener(outbox_channel(self.schema), lambda *_: self._wake.set())
        return conn

    async def _become_leader(self, conn: AsyncConnection, stop: asyncio.Event) -> bool:
        """Wait for the advisory lock on ``conn`` (session-level: it outlives the transaction
        that took it, and dies with the connection). False when stopped first."""
        while not stop.is_set():
            async with conn.begin():
                if (await conn.execute(self._lock, {"k": self._key})).scalar():
                    return True
            await sleep_or_stop(stop, self.lock_poll_s)
        return False


@contextlib.asynccontextmanager
async def _discarded_after(conn: AsyncConnection) -> AsyncIterator[None]:
    """Close the leader's connection instead of returning it to the pool, where it would keep
    the session-level advisory lock and no standby could ever take over."""
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await conn.invalidate()
