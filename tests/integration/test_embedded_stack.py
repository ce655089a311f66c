"""The embedded Postgres and broker serve real clients, fail loudly and leave nothing behind."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from revisit.embedded.broker import (
    EmbeddedBroker,
    ExternalBroker,
    kafka_api_versions_ok,
    wait_for_kafka,
)
from revisit.embedded.ports import free_port
from revisit.embedded.postgres import EmbeddedPostgres, ExternalPostgres

pytestmark = pytest.mark.integration


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    # Under /tmp rather than tmp_path: see the `pg` fixture for why postgres needs that.
    path = Path(tempfile.mkdtemp(prefix="revisit-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_postgres_accepts_asyncpg_connections_and_runs_select_1(
    pg: EmbeddedPostgres | ExternalPostgres,
) -> None:
    conn = await asyncpg.connect(pg.plain_dsn)
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()


async def test_embedded_postgres_creates_the_revisit_database(
    pg: EmbeddedPostgres | ExternalPostgres,
) -> None:
    if isinstance(pg, ExternalPostgres):
        pytest.skip("an external server's database is whatever TEST_DATABASE_URL names")
    assert pg.dsn == f"postgresql+asyncpg://postgres@127.0.0.1:{pg.port}/revisit"
    conn = await asyncpg.connect(pg.plain_dsn)
    try:
        assert await conn.fetchval("select current_database()") == "revisit"
        names = {r["datname"] for r in await conn.fetch("select datname from pg_database")}
        assert "revisit" in names
    finally:
        await conn.close()


async def test_broker_round_trips_keyed_messages_through_an_explicit_topic(
    kafka: EmbeddedBroker | ExternalBroker,
) -> None:
    topic = f"embedded-stack-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()

    sent = {f"patient-{i}".encode(): f"event-{i}".encode() for i in range(6)}
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in sent.items():
            await producer.send_and_wait(topic, value, key=key)
        assert len(await producer.partitions_for(topic)) == 3
    finally:
        await producer.stop()

    # No group: a group join costs seconds, and assignment is not what this test is about.
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    received: dict[bytes, bytes] = {}
    try:
        async with asyncio.timeout(10):
            while len(received) < len(sent):
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    received.update((r.key, r.value) for r in records if r.key is not None)
    finally:
        await consumer.stop()
    assert received == sent


async def test_wait_for_kafka_times_out_when_nothing_listens() -> None:
    with pytest.raises(TimeoutError):
        await wait_for_kafka(f"127.0.0.1:{free_port()}", timeout=0.3)


async def test_wait_for_kafka_returns_once_the_broker_answers(
    kafka: EmbeddedBroker | ExternalBroker,
) -> None:
    await wait_for_kafka(kafka.bootstrap, timeout=2)


def test_api_versions_probe_tells_a_broker_from_a_silent_socket(
    kafka: EmbeddedBroker | ExternalBroker,
) -> None:
    host, _, port = kafka.bootstrap.partition(",")[0].rpartition(":")
    assert kafka_api_versions_ok(host, int(port))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        assert not kafka_api_versions_ok("127.0.0.1", silent.getsockname()[1], timeout=0.2)


def test_broker_stop_leaves_no_process_and_is_idempotent() -> None:
    broker = EmbeddedBroker()
    broker.start()
    pid = broker.pid
    assert pid is not None and not _gone(pid)
    broker.stop()
    broker.stop()
    assert _gone(pid)
    assert not kafka_api_versions_ok("127.0.0.1", broker.port, timeout=0.2)


def test_broker_on_a_taken_port_fails_with_its_output() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = EmbeddedBroker(port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="Address in use"):
            broker.start(timeout=5)
    assert broker.pid is None


def test_postgres_stop_leaves_no_process_and_restarts_on_the_same_data(scratch_dir: Path) -> None:
    server = EmbeddedPostgres(scratch_dir / "data", fast=True, database="scratch")
    with server:
        pid = server.pid
        assert pid is not None and not _gone(pid)
    assert _gone(pid)
    assert _group_gone(pid), "backends outlived the postmaster"
    assert not (scratch_dir / "data" / "postmaster.pid").exists()
    server.stop()  # idempotent

    server.start()  # existing data dir: no initdb, database already there
    try:
        assert server.pid is not None and server.pid != pid
    finally:
        server.stop()


def test_postgres_on_a_taken_port_fails_with_its_log(scratch_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = EmbeddedPostgres(scratch_dir / "data", port=taken.getsockname()[1], fast=True)
        with pytest.raises(RuntimeError, match="could not create any TCP/IP sockets"):
            server.start()
    assert server.pid is None
