"""The six services running for real (uvicorn on free ports, the embedded PostgreSQL and broker),
in a thread of their own, for the security tests that call them over HTTP as any client would:
schemathesis over each OpenAPI, and the cross-clinic (BOLA) matrix.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from shared.auth import issue_staff_token
from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings

JWT_SECRET = "security-tests-" + "s" * 40
SERVICES = ("ingest", "segmenter", "sequencer", "messenger", "escalation", "metrics")


def token(role: str, clinics: list[str] | str, subject: str = "staff-1") -> dict[str, str]:
    issued = issue_staff_token(
        JWT_SECRET, subject=subject, role=role, clinics=clinics, ttl=timedelta(hours=2)
    )
    return {"Authorization": f"Bearer {issued}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(name: str, settings: RevisitSettings) -> FastAPI:
    if name == "ingest":
        from services.ingest.app import create_app as ingest_app
        from services.ingest.settings import IngestSettings

        return ingest_app(settings, IngestSettings(mllp_enabled=False))
    if name == "metrics":
        from services.metrics.app import create_app as metrics_app
        from services.metrics.settings import MetricsSettings

        return metrics_app(settings, MetricsSettings(lag_enabled=False))
    module = __import__(f"services.{name}.app", fromlist=["create_app"])
    factory: Callable[[RevisitSettings], FastAPI] = module.create_app
    return factory(settings)


@dataclass
class Stack:
    urls: dict[str, str]
    dsn: str
    extras: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> httpx.Client:
        return httpx.Client(base_url=self.urls[service], timeout=30)


def _fresh_database(pg: Any) -> str:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"security_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        admin = create_async_engine(str(pg.dsn), isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()

    asyncio.run(create())
    return make_url(str(pg.dsn)).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def own_broker() -> Iterator[Any]:
    """A broker of this module's own: other modules in the same worker run services with the
    same consumer groups, which would take clinic B's events away from this stack."""
    from revisit.embedded.broker import EmbeddedBroker, ExternalBroker

    if bootstrap := os.environ.get("TEST_KAFKA_BOOTSTRAP"):
        yield ExternalBroker(bootstrap)
        return
    with EmbeddedBroker() as broker:
        yield broker


# One stack per module, on its own database and broker: the fuzzer's random (valid) requests
# change state the BOLA matrix must not inherit, and nothing else shares its topics.
@pytest.fixture(scope="module")
def stack(pg: Any, own_broker: Any) -> Iterator[Stack]:
    from revisit.migrate import migrate_all
    from shared.kafka import ensure_topics

    dsn, bootstrap = _fresh_database(pg), str(own_broker.bootstrap)
    settings = RevisitSettings(
        revisit_profile="test",
        revisit_clock="system",
        db=DatabaseSettings(database_url=dsn, database_pool_size=3),
        kafka=KafkaSettings(kafka_bootstrap_servers=bootstrap, kafka_partitions=3),
        auth=AuthSettings(revisit_jwt_secret=JWT_SECRET),
    )
    ports = {name: free_port() for name in SERVICES}
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                build(name, settings),
                host="127.0.0.1",
                port=ports[name],
                log_level="warning",
                lifespan="on",
            )
        )
        for name in SERVICES
    ]
    failed: list[BaseException] = []

    async def run() -> None:
        await migrate_all(dsn)
        await ensure_topics(bootstrap, partitions=3)
        await asyncio.gather(*(server.serve() for server in servers))

    def main() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=main, name="security-stack", daemon=True)
    thread.start()
    for _ in range(1200):
        if failed or all(server.started for server in servers):
            break
        thread.join(0.1)
    if failed or not all(server.started for server in servers):
        for server in servers:
            server.should_exit = True
        thread.join(20)
        raise RuntimeError(f"the services did not start: {failed}")
    try:
        yield Stack({n: f"http://127.0.0.1:{p}" for n, p in ports.items()}, dsn)
    finally:
        for server in servers:
            server.should_exit = True
        thread.join(30)
