"""Background loops run under one supervisor: a crash is reported, restarted, and /readyz
says "not ready" while a required loop is down."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings
from shared.loops import Loops
from shared.runtime import Runtime, ServiceSpec, build_app
from tests.integration.conftest import Scratch, wait_for

pytestmark = pytest.mark.integration


def _restarts(service: str, loop: str) -> float:
    value = REGISTRY.get_sample_value(
        "revisit_loop_restarts_total", {"service": service, "loop": loop}
    )
    return value or 0.0


async def test_a_crashed_loop_is_reported_and_restarted_with_backoff() -> None:
    runs = 0

    async def crashes_twice(stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise ConnectionError("lost the database")
        await stop.wait()

    loops = Loops("it-unit")
    loops.backoff.base = loops.backoff.cap = 0.05
    loops.add("worker", crashes_twice)
    loops.start()
    try:

        async def running() -> bool:
            return loops.status() == {"worker": "up"} and runs == 3

        assert await wait_for(running, timeout=3)
        assert loops["worker"].crashes == 2
        assert loops["worker"].last_error == "ConnectionError"
        assert _restarts("it-unit", "worker") == 2
    finally:
        await loops.stop()
    assert loops.status() == {"worker": "down"}


async def test_readyz_is_not_ready_while_a_required_loop_is_down_and_ready_once_it_is_back(
    scratch: Scratch, migrated: str, kafka_settings: KafkaSettings
) -> None:
    crashed = asyncio.Event()

    async def flaky(stop: asyncio.Event) -> None:
        if not crashed.is_set():
            crashed.set()
            raise RuntimeError("a bug in the loop")
        await stop.wait()

    async def on_start(runtime: Runtime) -> None:
        runtime.loops.backoff.base = runtime.loops.backoff.cap = 2.0
        runtime.loops.add("flaky", flaky)

    spec = ServiceSpec(name="it-loops", schema=scratch.schema, on_start=on_start)
    settings = RevisitSettings(
        db=DatabaseSettings(database_url=migrated),
        kafka=kafka_settings,
        auth=AuthSettings(revisit_jwt_secret="x" * 40),
        revisit_profile="test",
    )
    app = build_app(spec, settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://it") as client:
            await crashed.wait()
            down = await client.get("/readyz")
            assert down.status_code == 503, down.text
            assert down.json()["checks"]["loops"] == "down: flaky"

            async def ready() -> bool:
                answer: Any = await client.get("/readyz")
                return bool(answer.status_code == 200)

            assert await wait_for(ready, timeout=5)
    assert _restarts("it-loops", "flaky") == 1
