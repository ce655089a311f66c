"""In production an urgent or high case must page a real notifier: the service refuses to
start while any clinic's urgent or high route ends at the sandbox notifier (which only writes a
row), and refuses a clinic's set-up change that would leave one there; both say which clinic
and which route. The dev and test profiles keep the sandbox. Staff here sign in with the
identity provider's tokens (HS256 is refused in production), served by a local JWKS server."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from services.escalation.app import build_spec
from services.escalation.domain import defaults
from services.escalation.domain.live_routes import sandbox_routes
from services.escalation.live_routes import SandboxRoutes
from services.escalation.notifiers import NotifierKind
from services.escalation.repository import notifiers, setup
from services.escalation.settings import EscalationSettings
from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings
from shared.runtime import build_app
from tests.unit.jwks_server import AUDIENCE, Issuer, running_issuer

pytestmark = pytest.mark.integration
CLINIC = "clinic-prod-routes"


def test_the_default_routes_of_a_new_clinic_end_at_the_sandbox() -> None:
    rotations = {r.rotation_id: r for r in defaults.default_rotations("America/New_York")}
    found = sandbox_routes(defaults.default_rules(), rotations, ("sandbox",), set())
    assert "rule red-flag-in-hours (urgent/high) -> rotation nurse-line pages only sandbox" in found
    # the fallbacks are paged too when nobody answers
    assert any("rotation practice-manager" in f for f in found)
    assert sandbox_routes(defaults.default_rules(), rotations, ("pager",), {"pager"}) == []


@pytest.fixture(scope="module")
def provider() -> Iterator[Issuer]:
    with running_issuer() as issuer:
        issuer.add_key("k1")
        yield issuer


@pytest.fixture(scope="module")
async def database(pg: Any) -> AsyncIterator[str]:
    """A database of its own: the start-up check reads every clinic there is."""
    from revisit.migrate import migrate_all

    name = f"esc_prod_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(str(pg.dsn), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f"CREATE DATABASE {name}"))
    dsn = make_url(str(pg.dsn)).set(database=name).render_as_string(hide_password=False)
    await migrate_all(dsn)
    yield dsn
    await admin.dispose()


def production(dsn: str, bootstrap: str, issuer: Issuer) -> RevisitSettings:
    auth = AuthSettings(revisit_oidc_issuer=issuer.issuer, revisit_oidc_audience=AUDIENCE)
    settings = RevisitSettings(
        revisit_profile="test",
        db=DatabaseSettings(database_url=dsn, database_pool_size=3),
        kafka=KafkaSettings(kafka_bootstrap_servers=bootstrap),
        auth=auth,
    )
    # The production validator wants an https issuer; the local JWKS server is plain HTTP.
    return settings.model_copy(update={"revisit_profile": "production"})


def app_for(settings: RevisitSettings) -> Any:
    spec = build_spec(EscalationSettings(dispatch_interval_ms=50))
    return build_app(dataclasses.replace(spec, subscriptions=lambda _rt: ()), settings)


async def test_production_refuses_to_start_then_refuses_a_sandbox_route(
    database: str, kafka: Any, provider: Issuer
) -> None:
    engine = create_async_engine(database)
    async with engine.begin() as conn:
        session = AsyncSession(bind=conn)
        await setup.ensure_clinic(session, CLINIC, "America/New_York")
        await session.flush()
    settings = production(database, kafka.bootstrap, provider)
    app = app_for(settings)
    with pytest.raises(SandboxRoutes) as refused:
        async with app.router.lifespan_context(app):
            pass
    words = str(refused.value)
    assert f"clinic {CLINIC}" in words and "rule red-flag-in-hours" in words
    assert "rotation dermatologist-on-call pages only sandbox" in words

    # a real notifier for the clinic's defaults: now it starts
    async with engine.begin() as conn:
        session = AsyncSession(bind=conn)
        await notifiers.upsert(
            session,
            CLINIC,
            "pager",
            NotifierKind.pagerduty,
            {},
            secret_env="REVISIT_NOTIFIER_CLINIC_PROD_ROUTES__PD",
            secret_value=None,
        )
        await session.execute(
            text(
                "UPDATE escalation.clinics SET default_notifiers = '[\"pager\"]' "
                "WHERE clinic_id = :c"
            ),
            {"c": CLINIC},
        )
        await session.flush()
    app = app_for(settings)
    admin = {
        "Authorization": "Bearer "
        + provider.token(revisit_role="admin", revisit_clinics=[CLINIC], sub="admin-1")
    }
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://esc") as client:
            url = f"/clinics/{CLINIC}/rotations/nurse-line"
            body = {
                "name": "Nurse line",
                "time_zone": "America/New_York",
                "members": [{"responder_id": "rn-1"}],
                "notifier_ids": ["sandbox"],
            }
            answer = await client.put(url, json=body, headers=admin)
            assert answer.status_code == 422, answer.text
            detail = answer.json()["detail"]
            assert f"clinic {CLINIC}" in detail
            assert "rule red-flag-in-hours (urgent/high) -> rotation nurse-line" in detail
            # nothing was saved: the rotation still pages the clinic's real default
            rotations = await client.get(f"/clinics/{CLINIC}/rotations", headers=admin)
            [nurse] = [r for r in rotations.json()["rotations"] if r["rotation_id"] == "nurse-line"]
            assert nurse["notifier_ids"] == []
            answer = await client.put(url, json={**body, "notifier_ids": ["pager"]}, headers=admin)
            assert answer.status_code == 200, answer.text
    await engine.dispose()
