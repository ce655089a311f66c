"""The console in-process with its service clients faked at their base classes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from tests.console.fakes import FakeTokens, World, fake_apis
from tests.console.world import A, build_world

BASE = "http://127.0.0.1:8008"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Browser:
    """An HTTP client that keeps cookies, like a browser, with the world behind the console."""

    client: httpx.AsyncClient
    world: World

    async def sign_in(
        self, subject: str = "nurse-1", role: str = "operator", clinics: str = A
    ) -> httpx.Response:
        page = await self.client.get("/sign-in")
        token = CSRF.search(page.text)
        assert token, page.text
        return await self.client.post(
            "/sign-in",
            data={
                "csrf": token.group(1),
                "subject": subject,
                "role": role,
                "clinics": clinics,
                "next": "/",
            },
        )

    async def csrf(self, path: str) -> str:
        page = await self.client.get(path)
        found = CSRF.search(page.text)
        assert found, page.text
        return found.group(1)

    async def post(self, page: str, to: str, **fields: str) -> httpx.Response:
        """Submit a form to ``to`` as the page at ``page`` would (with its CSRF token)."""
        return await self.client.post(to, data={"csrf": await self.csrf(page), **fields})


def settings(**overrides: object) -> ConsoleSettings:
    values: dict[str, object] = {
        "profile": "test",
        "dev_sign_in": True,
        "secret": "console-test-secret-" + "x" * 20,
        "default_clinic": A,
        "public_url": BASE,
        **overrides,
    }
    return ConsoleSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    world = build_world()
    app = create_app(settings(), apis=fake_apis(world), tokens=FakeTokens())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield Browser(client, world)
