"""In production an urgent or high case must page a real notifier: the service refuses to
start while any set-up clinic's urgent or high route ends at the sandbox notifier (which only
writes a row), and refuses a clinic's set-up change that would leave one there; both say which
clinic and which route. A clinic first seen through a case (not set up) pages the deployment's
fallback notifier instead, and production refuses to start without one. The dev and test
profiles keep the sandbox. Staff here sign in with the
identity provider's tokens (HS256 is refused in production), served by a local JWKS server."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from services.escalation import workflow
from services.escalation.app import build_spec
from services.escalation.domain import defaults
from services.escalation.domain.live_routes import sandbox_routes
from services.escalation.fallback import FALLBACK_ID, FallbackMissing
from services.escalation.live_routes import SandboxRoutes
from services.escalation.notifiers import NotifierKind
from services.escalation.notifiers.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from services.escalation.repository import notifiers, setup
from services.escalation.settings import EscalationSettings
from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings
from shared.events.escalations import CaseType
from shared.runtime import build_app
from tests.escalation.conftest import Received, RecordingServer
from tests.escalation.helpers import eventually, raised_event, rows
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


FALLBACK_SECRET = "deployment-fallback-signing-" + "s" * 16


def app_for(
    settings: RevisitSettings,
    fallback_url: str | None = "http://127.0.0.1:9/",
    kind: str = "webhook",
) -> Any:
    """The service in production; ``fallback_url`` None: no fallback notifier configured."""
    fallback: dict[str, Any] = {}
    if fallback_url is not None:
        fallback = {
            "fallback_notifier_kind": kind,
            "fallback_notifier_url": fallback_url,
            "fallback_notifier_secret": FALLBACK_SECRET,
            "outbound_allow_networks": "127.0.0.1/32",  # the tests' local receiver
        }
    spec = build_spec(EscalationSettings(dispatch_interval_ms=50, **fallback))
    return build_app(dataclasses.replace(spec, subscriptions=lambda _rt: ()), settings)


async def test_production_refuses_to_start_then_refuses_a_sandbox_route(
    database: str, kafka: Any, provider: Issuer
) -> None:
    engine = create_async_engine(database)
    async with engine.begin() as conn:
        session = AsyncSession(bind=conn)
        await setup.ensure_clinic(session, CLINIC, "America/New_York")
        # a real notifier makes the clinic set up, but its defaults still page the sandbox
        await notifiers.upsert(
            session,
            CLINIC,
            "pager",
            NotifierKind.pagerduty,
            {},
            secret_env="REVISIT_NOTIFIER_CLINIC_PROD_ROUTES__PD",
            secret_value=None,
        )
        await session.flush()
    settings = production(database, kafka.bootstrap, provider)
    app = app_for(settings)
    with pytest.raises(SandboxRoutes) as refused:
        async with app.router.lifespan_context(app):
            pass
    words = str(refused.value)
    assert f"clinic {CLINIC}" in words and "rule red-flag-in-hours" in words
    assert "rotation dermatologist-on-call pages only sandbox" in words

    # the real notifier for the clinic's defaults: now it starts
    async with engine.begin() as conn:
        session = AsyncSession(bind=conn)
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


async def test_production_without_a_fallback_notifier_refuses_to_start_naming_the_setting(
    database: str, kafka: Any, provider: Issuer
) -> None:
    app = app_for(production(database, kafka.bootstrap, provider), fallback_url=None)
    with pytest.raises(FallbackMissing) as refused:
        async with app.router.lifespan_context(app):
            pass
    assert "REVISIT_ESCALATION_FALLBACK_NOTIFIER_KIND must be set in production" in str(
        refused.value
    )
    # a fallback the outbound allow-list refuses does not start either, and says which setting
    blocked = EscalationSettings(
        fallback_notifier_kind="webhook",
        fallback_notifier_url="http://127.0.0.1:9/",
        fallback_notifier_secret=FALLBACK_SECRET,
    )
    spec = dataclasses.replace(build_spec(blocked), subscriptions=lambda _rt: ())
    app = build_app(spec, production(database, kafka.bootstrap, provider))
    with pytest.raises(FallbackMissing, match="REVISIT_ESCALATION_FALLBACK_NOTIFIER_URL"):
        async with app.router.lifespan_context(app):
            pass


async def test_a_red_flag_of_a_clinic_never_set_up_pages_the_fallback_not_the_sandbox(
    database: str, kafka: Any, provider: Issuer, server: RecordingServer
) -> None:
    clinic = f"clinic-new-{uuid.uuid4().hex[:6]}"
    app = app_for(production(database, kafka.bootstrap, provider), f"{server.url}/fallback")
    admin = {
        "Authorization": "Bearer "
        + provider.token(revisit_role="admin", revisit_clinics=[clinic], sub="admin-1")
    }
    event = raised_event(clinic, case_type=CaseType.red_flag, at=datetime.now(UTC))
    escalation_id = event.payload.escalation_id
    async with app.router.lifespan_context(app):
        esc = app.state.runtime.context.escalation
        async with esc.runtime.sessions() as session, session.begin():
            assert await workflow.raise_case(session, esc, event, {})
        esc.wake_dispatcher()

        async def delivered() -> list[Received]:
            return [r for r in server.received if r.path == "/fallback"]

        [request] = await eventually(delivered)
        # the webhook's documented shape, signed with the deployment's secret
        verify_signature(
            FALLBACK_SECRET,
            request.headers.get(TIMESTAMP_HEADER.lower()),
            request.body,
            request.headers.get(SIGNATURE_HEADER.lower()),
        )
        body = request.json()
        assert body["type"] == "escalation.trigger" and body["escalation_id"] == escalation_id
        assert (body["clinic_id"], body["case_type"]) == (clinic, "red_flag")
        assert request.headers["idempotency-key"] == f"{escalation_id}:trigger:1"

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://esc") as client:
            answer = await client.get(f"/clinics/{clinic}/settings", headers=admin)
            assert answer.status_code == 200, answer.text
            assert answer.json()["set_up"] is False  # staff see the clinic needs set-up

        engine = create_async_engine(database)

        async def paged() -> list[dict[str, Any]]:
            found = await rows(
                engine,
                "SELECT notifier_id, state FROM escalation.pages WHERE escalation_id = :e",
                e=escalation_id,
            )
            return found if found and all(p["state"] == "delivered" for p in found) else []

        # recorded as usual, paged through the fallback, never only into the sandbox's table
        assert await eventually(paged) == [{"notifier_id": FALLBACK_ID, "state": "delivered"}]
        sandboxed = "SELECT 1 FROM escalation.sandbox_pages WHERE escalation_id = :e"
        assert not await rows(engine, sandboxed, e=escalation_id)
        [case] = await rows(
            engine,
            "SELECT state, clinic_id FROM escalation.cases WHERE escalation_id = :e",
            e=escalation_id,
        )
        assert case["clinic_id"] == clinic
        await engine.dispose()

    # the clinic that is not set up does not stop the next start (its pages go to the fallback)
    async with app.router.lifespan_context(app):
        pass


async def test_a_pagerduty_fallback_gets_the_trigger_and_the_acknowledgement_of_one_incident(
    database: str, kafka: Any, provider: Issuer, server: RecordingServer
) -> None:
    clinic = f"clinic-new-{uuid.uuid4().hex[:6]}"
    settings = production(database, kafka.bootstrap, provider)
    app = app_for(settings, f"{server.url}/v2/enqueue", kind="pagerduty")
    operator = {
        "Authorization": "Bearer "
        + provider.token(revisit_role="operator", revisit_clinics=[clinic], sub="rn-7")
    }
    event = raised_event(clinic, case_type=CaseType.red_flag, at=datetime.now(UTC))
    escalation_id = event.payload.escalation_id

    async def events(action: str) -> list[Any]:
        return [
            r.json()
            for r in server.received
            if r.path == "/v2/enqueue" and r.json()["event_action"] == action
        ]

    async with app.router.lifespan_context(app):
        esc = app.state.runtime.context.escalation
        async with esc.runtime.sessions() as session, session.begin():
            assert await workflow.raise_case(session, esc, event, {})
        esc.wake_dispatcher()
        # PagerDuty's Events API v2 shape, with the deployment's routing key
        [trigger] = await eventually(lambda: events("trigger"))
        assert trigger["routing_key"] == FALLBACK_SECRET
        assert trigger["dedup_key"] == escalation_id
        assert trigger["payload"]["source"] == f"revisit:{clinic}"
        assert trigger["payload"]["severity"] == "critical"

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://esc") as client:
            answer = await client.post(f"/cases/{escalation_id}/acknowledge", headers=operator)
            assert answer.status_code == 200, answer.text
        esc.wake_dispatcher()
        # the acknowledgement closes the same incident, through the same fallback
        [ack] = await eventually(lambda: events("acknowledge"))
        assert (ack["routing_key"], ack["dedup_key"]) == (FALLBACK_SECRET, escalation_id)


def test_an_incomplete_fallback_is_refused_naming_the_setting_never_the_secret() -> None:
    with pytest.raises(ValueError, match="REVISIT_ESCALATION_FALLBACK_NOTIFIER_URL") as no_url:
        EscalationSettings(fallback_notifier_kind="webhook", fallback_notifier_secret="k" * 20)
    assert "k" * 20 not in str(no_url.value)
    with pytest.raises(ValueError, match="REVISIT_ESCALATION_FALLBACK_NOTIFIER_SECRET"):
        EscalationSettings(fallback_notifier_kind="pagerduty")
    key = "routing-key-" + "q" * 20
    paged = EscalationSettings(fallback_notifier_kind="pagerduty", fallback_notifier_secret=key)
    fallback = paged.fallback_notifier()
    assert fallback is not None and fallback.notifier_id == FALLBACK_ID
    assert fallback.secret({}) == key
    assert key not in repr(paged) and key not in repr(fallback)
    assert EscalationSettings().fallback_notifier() is None
