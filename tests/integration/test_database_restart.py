"""What a real PostgreSQL restart must not break: one publishing relay, and the shared clock.

A private embedded Postgres (the session's own is shared by every test) is restarted under two
supervised relays while events are being committed; a third replica starts after the restart.
At no time after the restart may two relays publish, and each patient's events must leave in
the order they were committed. A service following the controlled clock must still follow it.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from revisit.embedded.postgres import EmbeddedPostgres
from shared.clock import ControlledClock, set_clock
from shared.loops import Loops
from shared.migration_ops import add_timer_retries_v1, create_backbone_v1
from shared.outbox import Outbox, OutboxRelay
from tests.integration.conftest import T0, patient_event, wait_for

pytestmark = pytest.mark.integration
SCHEMA = "leaders"
PATIENTS = [f"clinic-it:pt-order-{n}" for n in range(4)]
_ticket = itertools.count()


class StampingProducer:
    """Acknowledges at once and records (global order, monotonic time, key, value)."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, float, bytes, bytes]] = []

    async def send(
        self, topic: str, value: Any = None, key: Any = None, headers: Any = None
    ) -> Any:
        self.sent.append((next(_ticket), time.monotonic(), key, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        await asyncio.sleep(0)
        return future


def _backbone(connection: Connection) -> None:
    connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"'))
    with Operations.context(MigrationContext.configure(connection)):
        create_backbone_v1(SCHEMA)
        add_timer_retries_v1(SCHEMA)


@pytest.fixture
async def private_pg() -> AsyncIterator[EmbeddedPostgres]:
    base = Path(tempfile.mkdtemp(prefix="revisit-test-leaders-"))
    server = EmbeddedPostgres(base / "data", fast=True, database="leaders")
    await asyncio.to_thread(server.start)
    try:
        engine = create_async_engine(server.dsn)
        async with engine.begin() as conn:
            await conn.run_sync(_backbone)
        await engine.dispose()
        yield server
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(base, ignore_errors=True)


def _engine(server: EmbeddedPostgres) -> AsyncEngine:
    return create_async_engine(server.dsn, pool_pre_ping=True, pool_size=3, pool_timeout=2)


async def test_a_database_restart_never_leaves_two_publishing_relays_and_keeps_order(
    private_pg: EmbeddedPostgres,
) -> None:
    writer = _engine(private_pg)
    sessions = async_sessionmaker(writer, expire_on_commit=False)
    outbox = Outbox(SCHEMA)
    # (bytes, sure): a commit whose answer was lost in the restart may or may not have happened.
    committed: dict[bytes, list[tuple[bytes, bool]]] = {p.encode(): [] for p in PATIENTS}
    engines: list[AsyncEngine] = []
    sinks: list[StampingProducer] = []
    loops = Loops("it")
    loops.backoff.base, loops.backoff.cap = 0.1, 0.5

    def replica(name: str) -> None:
        engine, sink = _engine(private_pg), StampingProducer()
        engines.append(engine)
        sinks.append(sink)
        relay = OutboxRelay(
            engine, SCHEMA, sink, listen_dsn=private_pg.plain_dsn, batch_size=10, idle_wait=0.1
        )
        relay.lock_poll_s = 0.2
        loops.add(name, relay.run)

    async def write_for(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for key in PATIENTS:
                event = patient_event(key)
                try:
                    async with sessions() as session, session.begin():
                        await outbox.stage(session, [event])
                except Exception:
                    committed[key.encode()].append((event.to_bytes(), False))
                    await asyncio.sleep(0.1)  # the database is restarting
                    continue
                committed[key.encode()].append((event.to_bytes(), True))
            await asyncio.sleep(0.02)

    replica("relay-a")
    replica("relay-b")
    loops.start()
    try:
        await write_for(2.0)
        await asyncio.to_thread(private_pg.restart)
        replica("relay-c")  # a new replica starting after the restart
        await write_for(4.0)  # leadership settles during the first seconds
        steady_from = time.monotonic()
        await write_for(4.0)

        async def drained() -> bool:
            async with writer.connect() as conn:
                left = (await conn.execute(text(f"SELECT count(*) FROM {SCHEMA}.outbox"))).scalar()
            return left == 0

        deadline = time.monotonic() + 20
        while not await drained() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert await drained()
    finally:
        await loops.stop()
        for engine in [writer, *engines]:
            await engine.dispose()

    publishers = {
        i for i, sink in enumerate(sinks) for _, at, _, _ in sink.sent if at >= steady_from
    }
    assert len(publishers) == 1, f"relays {sorted(publishers)} all published after the restart"
    merged = sorted(s for sink in sinks for s in sink.sent)
    first_seen: dict[bytes, list[bytes]] = {p.encode(): [] for p in PATIENTS}
    seen: set[bytes] = set()
    for _, _, key, value in merged:
        if value not in seen:  # a republished event is dropped by the consumers' inbox
            seen.add(value)
            first_seen[key].append(value)
    for key, values in committed.items():
        expected = [v for v, sure in values if sure or v in seen]
        assert first_seen[key] == expected, f"{key!r}: events left out of commit order"


async def test_a_service_keeps_following_the_controlled_clock_after_a_database_restart(
    private_pg: EmbeddedPostgres,
) -> None:
    engine = _engine(private_pg)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE SCHEMA IF NOT EXISTS platform"))
        await conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS platform.clock (id int PRIMARY KEY, "
                "virtual_at timestamptz NOT NULL, real_epoch float8 NOT NULL, rate float8 NOT NULL)"
            )
        )
    await set_clock(engine, T0, rate=0)
    clock = ControlledClock(engine, private_pg.plain_dsn)
    await clock.start()
    loops = Loops("it-clock")
    loops.backoff.base, loops.backoff.cap = 0.1, 0.5
    loops.add("clock", clock.follow)
    loops.start()
    try:
        await asyncio.to_thread(private_pg.restart)
        later = T0.replace(year=T0.year + 1)
        for _ in range(50):  # the first writes may meet the restarting server
            try:
                await set_clock(engine, later, rate=0)
                break
            except Exception:
                await asyncio.sleep(0.1)

        async def follows() -> bool:
            return clock.now() == later

        assert await wait_for(follows, timeout=10), f"still at {clock.now()}"
    finally:
        await loops.stop()
        await clock.stop()
        await engine.dispose()
