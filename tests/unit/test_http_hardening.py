"""What every service's HTTP front door refuses: oversized bodies (before a route reads them),
the API description to strangers in production, and /metrics without its token in production.

The apps are built by the services' own composition code and called in memory without their
lifespan: everything here is decided before a route touches the database or the broker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import ValidationError

from shared.auth import build_authenticator, issue_staff_token
from shared.config import AuthSettings, RevisitSettings
from shared.request_limits import limit_for
from shared.runtime import ServiceSpec, build_app
from tests.unit.jwks_server import AUDIENCE, running_issuer

SECRET = "j" * 40
METRICS_TOKEN = "m" * 32


def settings(profile: str = "test", **values: Any) -> RevisitSettings:
    # Production takes staff tokens from an identity provider only (no HS256 secret) and needs
    # its own pseudonym key; the provider is never called by these tests.
    auth: dict[str, Any] = (
        {"revisit_oidc_issuer": "https://id.clinic.example", "revisit_oidc_audience": AUDIENCE}
        if profile == "production"
        else {"revisit_jwt_secret": SECRET}
    )
    base: dict[str, Any] = {
        "revisit_profile": profile,
        "revisit_metrics_token": METRICS_TOKEN,
        "db": {"database_url": "postgresql+asyncpg://u:p@db:5432/revisit"},
        "kafka": {"kafka_bootstrap_servers": "kafka:9093", "kafka_security_protocol": "SSL"},
        "auth": auth,
        "telemetry": {"revisit_pseudonym_key": "p" * 32},
    }
    return RevisitSettings(**(base | values))


def viewer() -> dict[str, str]:
    token = issue_staff_token(
        SECRET, subject="nurse-1", role="viewer", clinics=["clinic-a"], ttl=timedelta(hours=1)
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def seen() -> list[int]:
    return []


def echo_app(seen: list[int], profile: str = "test") -> FastAPI:
    router = APIRouter()

    @router.post("/notes")
    async def notes(request: Request) -> dict[str, int]:
        seen.append(len(await request.body()))
        return {"bytes": seen[-1]}

    @router.post("/bulk/notes")
    async def bulk(request: Request) -> dict[str, int]:
        seen.append(len(await request.body()))
        return {"bytes": seen[-1]}

    spec = ServiceSpec(
        name="metrics", schema="metrics", routers=(router,), body_limits={"/bulk/": 8192}
    )
    return build_app(spec, settings(profile, revisit_max_body_bytes=1024))


@pytest.fixture
async def client(seen: list[int]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=echo_app(seen))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
        yield c


async def test_a_body_over_the_limit_is_refused_with_413_before_the_route_reads_it(
    client: httpx.AsyncClient, seen: list[int]
) -> None:
    answer = await client.post("/notes", content=b"x" * 2000)
    assert answer.status_code == 413
    assert answer.json() == {
        "detail": [{"loc": "(body)", "msg": "larger than 1024 bytes, the limit of POST /notes"}]
    }
    assert seen == []
    assert (await client.post("/notes", content=b"x" * 1000)).json() == {"bytes": 1000}


async def test_a_chunked_body_without_a_length_is_cut_at_the_limit(
    client: httpx.AsyncClient, seen: list[int]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 500

    answer = await client.post("/notes", content=chunks())
    assert answer.status_code == 413
    assert seen == []


async def test_a_path_with_its_own_limit_takes_a_larger_body(
    client: httpx.AsyncClient, seen: list[int]
) -> None:
    assert (await client.post("/bulk/notes", content=b"z" * 6000)).json() == {"bytes": 6000}
    assert (await client.post("/bulk/notes", content=b"z" * 9000)).status_code == 413
    assert seen == [6000]


async def test_twilio_webhooks_take_at_most_64_kib_and_refuse_before_the_signature_check() -> None:
    from services.messenger.app import SPEC

    app = build_app(SPEC, settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://messenger") as c:
        answer = await c.post(
            "/webhooks/twilio/sms",
            content=b"Body=" + b"a" * 70_000,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert answer.status_code == 413
    assert "larger than 65536 bytes" in answer.json()["detail"][0]["msg"]


def test_ingest_submissions_keep_their_8_mib_and_everything_else_the_default() -> None:
    from services.ingest.app import build_spec
    from services.ingest.settings import IngestSettings

    limits = build_spec(IngestSettings()).body_limits
    assert limit_for("/fhir/r4/Appointment/a-1", 1 << 20, limits) == 8 << 20
    assert limit_for("/events", 1 << 20, limits) == 8 << 20
    assert limit_for("/admin/replay", 1 << 20, limits) == 1 << 20


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
async def test_production_serves_the_api_description_only_to_a_signed_in_caller(
    path: str, seen: list[int]
) -> None:
    app = echo_app(seen, "production")
    with running_issuer() as provider:
        provider.add_key("k1")
        # the production authenticator, pointed at a local provider instead of the practice's
        local = AuthSettings(revisit_oidc_issuer=provider.issuer, revisit_oidc_audience=AUDIENCE)
        app.state.authenticator = build_authenticator(local, profile="production")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
            stranger = await c.get(path)
            assert stranger.status_code == 401
            assert "/notes" not in stranger.text
            token = provider.token(revisit_role="viewer")
            staff = await c.get(path, headers={"Authorization": f"Bearer {token}"})
    assert staff.status_code == 200
    if path == "/openapi.json":
        assert "/notes" in staff.json()["paths"]


async def test_outside_production_the_api_description_stays_open(
    client: httpx.AsyncClient,
) -> None:
    assert "/notes" in (await client.get("/openapi.json")).json()["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_metrics_need_the_scrape_token(seen: list[int]) -> None:
    transport = httpx.ASGITransport(app=echo_app(seen, "production"))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as c:
        assert (await c.get("/metrics")).status_code == 401
        wrong = await c.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        scraped = await c.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status_code == 200 and "python_info" in scraped.text


def test_production_refuses_to_start_without_a_metrics_token() -> None:
    with pytest.raises(ValidationError, match="REVISIT_METRICS_TOKEN"):
        settings("production", revisit_metrics_token="")
    assert settings("dev", revisit_metrics_token="").revisit_metrics_token == ""
