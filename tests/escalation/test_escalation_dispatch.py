"""Page delivery from the ``pages`` table: retries with back-off, lifecycle order, isolation.

Real Postgres (the workflow and the dispatcher as the service runs them) and a real local
HTTP server standing in for PagerDuty and a webhook receiver. No broker: events staged for
Kafka are read back from the outbox table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.escalation import actions, workflow
from services.escalation.dispatch import PageDispatcher
from services.escalation.domain import Member, Rotation
from services.escalation.domain import defaults as seed
from services.escalation.notifiers import NotifierFactory, NotifierKind
from services.escalation.notifiers.config import secret_env_prefix
from services.escalation.repository import SCHEMA, cases, notifiers, setup
from services.escalation.settings import EscalationSettings
from services.escalation.workflow import Escalation
from shared.clock import FixedClock
from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings
from shared.db import make_sessions
from shared.events.escalations import Outcome
from shared.inbox import Inbox
from shared.outbound import OutboundPolicy
from shared.outbox import Outbox
from shared.runtime import Runtime
from shared.timers import Timer, Timers
from tests.escalation.conftest import RecordingServer, Reply
from tests.escalation.helpers import eventually, forget_clinics, raised_event, rows, staff

T0 = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # 22:00 in New York: red flags go to the dermatologist
PREFIX = f"clinic-disp-{uuid.uuid4().hex[:6]}"
LOCAL = OutboundPolicy.parse("127.0.0.1/32")  # the recording servers of these tests


def key_env(clinic: str) -> str:
    """The clinic's own variable for its PagerDuty routing key."""
    prefix = secret_env_prefix(clinic)
    assert prefix is not None
    return f"{prefix}PD"


ROUTING_KEY = "synthetic-routing-key-0001"
CONFIG = EscalationSettings(
    delivery_backoff_s=0.05,
    delivery_backoff_max_s=0.2,
    delivery_timeout_s=0.3,
    dispatch_interval_ms=20,
    delivery_max_tries=5,
    public_url="http://127.0.0.1:8005",
)


@dataclass
class Harness:
    engine: AsyncEngine
    esc: Escalation
    dispatcher: PageDispatcher
    env: dict[str, str]

    async def run_until(
        self, sql: str, timeout: float = 5.0, **params: Any
    ) -> list[dict[str, Any]]:
        """Dispatch (claim, deliver, record) until ``sql`` returns rows."""

        async def step() -> list[dict[str, Any]]:
            await self.dispatcher.dispatch_once()
            await self.dispatcher.drain(within=2)
            return await rows(self.engine, sql, **params)

        found: list[dict[str, Any]] = await eventually(step, timeout)
        return found


@pytest.fixture(scope="module")
async def harness(escalation_dsn: str) -> AsyncIterator[Harness]:
    engine = create_async_engine(escalation_dsn, pool_size=5)
    settings = RevisitSettings(
        db=DatabaseSettings(database_url=escalation_dsn),
        kafka=KafkaSettings(kafka_bootstrap_servers="127.0.0.1:9"),  # never contacted here
        auth=AuthSettings(revisit_jwt_secret="x" * 40),
    )
    runtime = Runtime(
        "escalation",
        settings,
        engine,
        make_sessions(engine),
        FixedClock(T0),
        Outbox(SCHEMA),
        Inbox(SCHEMA),
        Timers(SCHEMA),
    )
    esc = Escalation(runtime, CONFIG)
    env: dict[str, str] = {}
    async with httpx.AsyncClient() as http:
        factory = NotifierFactory(
            http=http, sessions=runtime.sessions, env=env, timeout=0.3, policy=LOCAL
        )
        yield Harness(engine, esc, PageDispatcher(esc, factory), env)
    await forget_clinics(engine, PREFIX)
    await engine.dispose()


async def clinic_paging_through(h: Harness, kind: NotifierKind, url: str) -> str:
    """A fresh clinic whose on-call dermatologists (dr-a, dr-b) are paged through ``url``."""
    clinic = f"{PREFIX}-{uuid.uuid4().hex[:6]}"
    h.env[key_env(clinic)] = ROUTING_KEY
    async with h.esc.runtime.sessions() as session, session.begin():
        await setup.ensure_clinic(session, clinic, "America/New_York")
        if kind is NotifierKind.pagerduty:
            await notifiers.upsert(
                session,
                clinic,
                "pager",
                kind,
                {"events_url": url},
                secret_env=key_env(clinic),
                secret_value=None,
            )
        else:
            await notifiers.upsert(
                session,
                clinic,
                "pager",
                kind,
                {"url": url},
                secret_env=None,
                secret_value="synthetic-hmac-secret",
            )
        derm = Rotation(
            seed.DERMATOLOGIST,
            "Dermatologists",
            "America/New_York",
            time(8, 0),
            7,
            date(2026, 3, 2),
            (Member("dr-a"), Member("dr-b")),
            fallback_rotation_id=seed.PRACTICE_MANAGER,
            notifier_ids=("pager",),
        )
        await setup.upsert_rotation(session, clinic, derm)
    return clinic


async def raise_red_flag(h: Harness, clinic: str) -> str:
    event = raised_event(clinic, at=T0)
    async with h.esc.runtime.sessions() as session, session.begin():
        assert await workflow.raise_case(session, h.esc, event, {})
    return str(event.payload.escalation_id)


async def paged_events(h: Harness, escalation_id: str) -> list[dict[str, Any]]:
    found = await rows(
        h.engine,
        "SELECT event_type, body FROM {s}.outbox WHERE event_type = 'EscalationPaged' ORDER BY id",
    )
    bodies = [json.loads(r["body"]) for r in found]
    return [b["payload"] for b in bodies if b["payload"]["escalation_id"] == escalation_id]


PAGE = "SELECT * FROM {s}.pages WHERE escalation_id = :e AND action = :a AND state = :state"


async def test_a_page_answered_with_500_is_retried_with_the_same_dedup_key_until_delivered(
    harness: Harness, server: RecordingServer
) -> None:
    clinic = await clinic_paging_through(
        harness, NotifierKind.pagerduty, f"{server.url}/v2/enqueue"
    )
    server.replies = [Reply(500), Reply(502)]
    esc_id = await raise_red_flag(harness, clinic)
    [page] = await harness.run_until(PAGE, e=esc_id, a="trigger", state="delivered")
    assert page["tries"] == 3 and page["responder_id"] == "dr-a"
    bodies = [r.json() for r in server.received]
    assert len(bodies) == 3 and all(b == bodies[0] for b in bodies)
    assert bodies[0]["dedup_key"] == esc_id and bodies[0]["routing_key"] == ROUTING_KEY
    assert [p["attempt"] for p in await paged_events(harness, esc_id)] == [1]
    trail = await rows(
        harness.engine,
        "SELECT actor, action FROM {s}.audit WHERE escalation_id = :e ORDER BY id",
        e=esc_id,
    )
    assert [a["action"] for a in trail][-1] == "paged"
    assert {a["actor"] for a in trail} == {"system"}


async def test_a_page_that_times_out_is_retried_and_delivered(
    harness: Harness, server: RecordingServer
) -> None:
    clinic = await clinic_paging_through(harness, NotifierKind.webhook, f"{server.url}/hook")
    server.replies = [Reply(200, delay_s=1.0)]
    esc_id = await raise_red_flag(harness, clinic)
    [page] = await harness.run_until(PAGE, e=esc_id, a="trigger", state="delivered")
    assert page["tries"] == 2
    keys = {r.headers["idempotency-key"] for r in server.received}
    assert keys == {f"{esc_id}:trigger:1"}


async def test_a_rejected_page_fails_at_once_is_audited_and_announces_no_page(
    harness: Harness, server: RecordingServer
) -> None:
    clinic = await clinic_paging_through(
        harness, NotifierKind.pagerduty, f"{server.url}/v2/enqueue"
    )
    server.default = Reply(400, b'{"status":"invalid event"}')
    esc_id = await raise_red_flag(harness, clinic)
    [page] = await harness.run_until(PAGE, e=esc_id, a="trigger", state="failed")
    assert (page["tries"], page["last_error"]) == (1, "http 400")
    assert await paged_events(harness, esc_id) == []
    trail = await rows(
        harness.engine,
        "SELECT action, detail FROM {s}.audit WHERE escalation_id = :e AND action = 'page_failed'",
        e=esc_id,
    )
    assert trail and trail[0]["detail"]["error"] == "http 400"


async def test_a_missing_secret_is_retried_and_fixing_it_applies_to_the_next_try(
    harness: Harness, server: RecordingServer
) -> None:
    clinic = await clinic_paging_through(
        harness, NotifierKind.pagerduty, f"{server.url}/v2/enqueue"
    )
    harness.env.pop(key_env(clinic))
    try:
        esc_id = await raise_red_flag(harness, clinic)
        await harness.dispatcher.dispatch_once()
        await harness.dispatcher.drain()
        [page] = await rows(harness.engine, PAGE, e=esc_id, a="trigger", state="pending")
        assert page["last_error"] == (
            f"pagerduty notifier has no environment variable {key_env(clinic)} set"
        )
        assert ROUTING_KEY not in page["last_error"]
    finally:
        harness.env[key_env(clinic)] = ROUTING_KEY
    await harness.run_until(PAGE, e=esc_id, a="trigger", state="delivered")
    assert len(server.received) == 1


async def test_pagerduty_hears_acknowledge_and_resolve_only_after_the_trigger(
    harness: Harness, server: RecordingServer
) -> None:
    clinic = await clinic_paging_through(
        harness, NotifierKind.pagerduty, f"{server.url}/v2/enqueue"
    )
    server.replies = [Reply(500)]
    esc_id = await raise_red_flag(harness, clinic)
    await harness.dispatcher.dispatch_once()
    await harness.dispatcher.drain()  # the trigger failed once and waits for its back-off
    await actions.acknowledge(harness.esc, esc_id, staff("dr-a", clinic))
    await actions.resolve(
        harness.esc,
        esc_id,
        staff("dr-a", clinic),
        Outcome.answered,
        note="Called back; reassured.",
        resume_outreach=None,
    )
    await harness.run_until(PAGE, e=esc_id, a="resolve", state="delivered")
    assert [r.json()["event_action"] for r in server.received] == [
        "trigger",
        "trigger",
        "acknowledge",
        "resolve",
    ]
    assert {r.json()["dedup_key"] for r in server.received} == {esc_id}
    types = await rows(
        harness.engine,
        "SELECT event_type FROM {s}.outbox WHERE message_key LIKE :p ORDER BY id",
        p=f"{clinic}:%",
    )
    # The trigger reached PagerDuty only after the case was closed: no late "paged" event.
    assert [t["event_type"] for t in types] == ["EscalationAcknowledged", "EscalationResolved"]


async def test_a_slow_provider_does_not_hold_up_another_cases_page(
    harness: Harness, server: RecordingServer
) -> None:
    slow_clinic = await clinic_paging_through(harness, NotifierKind.webhook, f"{server.url}/slow")
    fast_clinic = await clinic_paging_through(harness, NotifierKind.webhook, f"{server.url}/fast")
    release = threading.Event()
    server.on_request = lambda r: Reply(200, hold=release) if r.path == "/slow" else None
    slow = await raise_red_flag(harness, slow_clinic)
    fast = await raise_red_flag(harness, fast_clinic)
    # A patient provider: the slow delivery hangs on the held reply instead of timing out.
    async with httpx.AsyncClient() as http:
        factory = NotifierFactory(
            http=http,
            sessions=harness.esc.runtime.sessions,
            env=harness.env,
            timeout=10,
            policy=LOCAL,
        )
        dispatcher = PageDispatcher(harness.esc, factory)
        stop = asyncio.Event()
        loop = asyncio.create_task(dispatcher.run(stop))
        try:
            delivered = await eventually(
                lambda: rows(harness.engine, PAGE, e=fast, a="trigger", state="delivered")
            )
            assert delivered
            still = await rows(harness.engine, PAGE, e=slow, a="trigger", state="pending")
            assert still and still[0]["tries"] == 1  # in flight: claimed once, not re-tried
            assert dispatcher.in_flight == 1
            release.set()
            done = await eventually(
                lambda: rows(harness.engine, PAGE, e=slow, a="trigger", state="delivered")
            )
            assert done
        finally:
            release.set()
            stop.set()
            dispatcher.wake()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(loop, timeout=5)


async def test_a_timer_for_a_case_someone_is_acting_on_is_put_back_instead_of_waiting(
    harness: Harness,
) -> None:
    clinic = f"{PREFIX}-{uuid.uuid4().hex[:6]}"  # default set-up: the sandbox pager
    esc_id = await raise_red_flag(harness, clinic)
    [due] = await rows(harness.engine, "SELECT * FROM {s}.timers WHERE timer_key = :e", e=esc_id)
    timer = Timer(due["id"], due["kind"], esc_id, due["due_at"], due["patient_key"], due["payload"])
    sessions = harness.esc.runtime.sessions
    async with sessions() as holder, holder.begin():
        assert await cases.lock(holder, esc_id) is not None  # a staff action in progress
        async with sessions() as poller, poller.begin():
            await poller.execute(
                text(f"DELETE FROM {SCHEMA}.timers WHERE id = :i"), {"i": timer.id}
            )
            await asyncio.wait_for(workflow.fire_timer(poller, harness.esc, timer), timeout=5)
    back = await rows(
        harness.engine, "SELECT due_at FROM {s}.timers WHERE timer_key = :e", e=esc_id
    )
    assert [b["due_at"] for b in back] == [timer.due_at]
    async with sessions() as poller, poller.begin():
        await workflow.fire_timer(poller, harness.esc, timer)
    [case] = await rows(
        harness.engine,
        "SELECT attempt, responder_id FROM {s}.cases WHERE escalation_id = :e",
        e=esc_id,
    )
    # One person in the default rotation: the next page goes to its fallback.
    assert case == {"attempt": 2, "responder_id": "practice-manager.duty"}


async def test_no_log_line_carries_a_webhook_url_or_a_routing_key(
    harness: Harness, server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_path = "/services/T0SYNTH/B0SYNTH/hooksecret42"
    clinic = f"{PREFIX}-{uuid.uuid4().hex[:6]}"
    harness.env[key_env(clinic)] = ROUTING_KEY
    async with harness.esc.runtime.sessions() as session, session.begin():
        await setup.ensure_clinic(session, clinic, "America/New_York")
        await notifiers.upsert(
            session,
            clinic,
            "chat",
            NotifierKind.slack,
            {},
            secret_env=None,
            secret_value=f"{server.url}{secret_path}",
        )
        await notifiers.upsert(
            session,
            clinic,
            "pd",
            NotifierKind.pagerduty,
            {"events_url": f"{server.url}/v2/enqueue"},
            secret_env=key_env(clinic),
            secret_value=None,
        )
        await setup.update_clinic(
            session,
            setup.Clinic(clinic, seed.default_hours("America/New_York"), {}, ("chat", "pd")),
        )
    server.replies = [Reply(500)]
    esc_id = await raise_red_flag(harness, clinic)
    both = (
        "SELECT count(*) FROM {s}.pages WHERE escalation_id = :e AND state = 'delivered' "
        "HAVING count(*) = 2"
    )
    await harness.run_until(both, e=esc_id)
    assert {r.path for r in server.received} == {secret_path, "/v2/enqueue"}
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "page delivery" in logged
    assert "hooksecret42" not in logged and ROUTING_KEY not in logged
