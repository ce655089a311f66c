"""Background loops run under one supervisor: a crash is reported, restarted, and /readyz
says "not ready" while a required loop is down."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends
from prometheus_client import REGISTRY

from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings
from shared.loops import Loops
from shared.runtime import Runtime, ServiceSpec, build_app, context_dependency
from tests.integration.conftest import Scratch, wait_for

pytestmark = pytest.mark.integration


def _settings(database_url: str, kafka: KafkaSettings) -> RevisitSettings:
    return RevisitSettings(
        db=DatabaseSettings(database_url=database_url),
        kafka=kafka,
        auth=AuthSettings(revisit_jwt_secret="x" * 40),
        revisit_profile="test",
    )


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
    app = build_app(spec, _settings(migrated, kafka_settings))
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


async def test_a_job_runs_to_its_end_once_and_again_only_after_a_crash() -> None:
    runs = 0

    async def rebuild(stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise ConnectionError("lost the database")

    loops = Loops("it-once")
    loops.backoff.base = loops.backoff.cap = 0.05
    loops.once("rebuild", rebuild)
    loops.start()
    try:

        async def finished() -> bool:
            return loops.status() == {"rebuild": "done"}

        assert await wait_for(finished, timeout=3)
        await asyncio.sleep(0.2)
        assert runs == 2 and loops.down() == []
    finally:
        await loops.stop()


@dataclass
class Desk:
    """A service's context: what its routes and handlers share."""

    greeting: str
    loops_running_at_close: bool | None = None
    runtime: Runtime[Desk] | None = None

    async def aclose(self) -> None:
        assert self.runtime is not None
        self.loops_running_at_close = any(v == "up" for v in self.runtime.loops.status().values())


DeskDep = Annotated[Desk, Depends(context_dependency(Desk))]


async def test_the_typed_context_is_built_in_the_lifespan_served_to_routes_and_closed_last(
    scratch: Scratch, migrated: str, kafka_settings: KafkaSettings
) -> None:
    router = APIRouter()

    @router.get("/greeting")
    async def greeting(desk: DeskDep) -> dict[str, str]:
        return {"greeting": desk.greeting}

    seen_by_handlers: list[str] = []

    async def build(runtime: Runtime[Desk]) -> Desk:
        return Desk(greeting=f"hello from {runtime.service}", runtime=runtime)

    def timers(runtime: Runtime[Desk]) -> dict[str, Any]:
        seen_by_handlers.append(runtime.context.greeting)  # built before the timers and consumers
        return {}

    spec = ServiceSpec[Desk](
        name="it-context",
        schema=scratch.schema,
        context=build,
        timer_handlers=timers,
        routers=(router,),
    )
    app = build_app(spec, _settings(migrated, kafka_settings))
    async with app.router.lifespan_context(app):
        runtime: Runtime[Desk] = app.state.runtime
        desk = runtime.context
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://it") as client:
            answer = await client.get("/greeting")
            assert answer.json() == {"greeting": "hello from it-context"}
    assert seen_by_handlers == ["hello from it-context"]
    assert desk.loops_running_at_close is False
