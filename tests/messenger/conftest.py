"""Messenger test fixtures: the real service started once for the package, and helpers.

The service runs with the system clock; tests pick each patient's time zone so that it is
day (or night) there right now, which keeps quiet-hours outcomes deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from opentelemetry.context import Context
from sqlalchemy import text

from revisit.migrate import migrate_all
from services.messenger.app import create_app
from services.messenger.context import MessengerContext
from services.messenger.settings import MessengerSettings
from shared.auth import issue_staff_token
from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings
from shared.consumer import Delivery
from shared.events import new_event, parse_event
from shared.events.common import (
    ClinicalUrgency,
    Contact,
    ContactKind,
    ContactUse,
    EhrSource,
    Purpose,
    Segment,
    ServiceLine,
    SourceSystem,
)
from shared.events.ehr import PatientUpserted
from shared.events.eligibility import Documented, ReasonSource
from shared.events.envelope import Envelope, Payload
from shared.events.outreach import SendStep, Tone
from shared.kafka import ensure_topics
from shared.outreach_policy import DEFAULT_POLICY, OutreachPolicy
from shared.runtime import Runtime

SECRET = "messenger-test-secret-" + "x" * 20
TWILIO_TOKEN = "twilio-test-token"
PUBLIC_URL = "https://messenger.example.test"
LINK_BASE = "https://m.example.test/b"  # tracked booking links (answered by this messenger)
EMAIL_SECRET = "email-gateway-secret"


def zone_at_local_hour(hour: int, now: datetime | None = None) -> str:
    """An IANA zone (Etc/GMT±n) where it is ``hour`` o'clock now."""
    now = now or datetime.now(UTC)
    offset = hour - now.hour
    if offset > 14:
        offset -= 24
    if offset < -12:
        offset += 24
    if offset == 0:
        return "Etc/GMT"
    # POSIX sign convention: Etc/GMT-3 is three hours AHEAD of UTC.
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def day_zone() -> str:
    return zone_at_local_hour(13)


def night_zone() -> str:
    return zone_at_local_hour(2)


def new_clinic() -> str:
    return f"clinic-m{uuid.uuid4().hex[:8]}"


def phone() -> str:
    return "+1555" + str(uuid.uuid4().int)[:7]


def patient_upserted(
    *,
    zone: str | None = None,
    language: str = "en",
    phone_number: str | None = None,
    email: str | None = None,
    given_name: str | None = "Ana",
    at: datetime | None = None,
    deceased: bool = False,
) -> PatientUpserted:
    contacts = []
    if phone_number:
        contacts.append(
            Contact(kind=ContactKind.phone, value=phone_number, use=ContactUse.mobile, rank=1)
        )
    if email:
        contacts.append(Contact(kind=ContactKind.email, value=email, rank=1))
    return PatientUpserted(
        source=EhrSource(
            system=SourceSystem.json,
            record_id=f"p-{uuid.uuid4().hex[:6]}",
            source_updated_at=at or datetime.now(UTC) - timedelta(days=1),
        ),
        given_name=given_name,
        preferred_language=language,
        time_zone=zone or day_zone(),
        contacts=tuple(contacts),
        deceased=deceased,
    )


def documented_for(workflow: str, now: datetime) -> Documented:
    """What an eligibility of this workflow's usual segment documents (the due date ahead)."""
    if workflow == "cancellation_recovery":
        start = now - timedelta(hours=3)
        return Documented(
            source=ReasonSource.cancellation, recorded_on=start.date(), recorded_at=start
        )
    visit = now - timedelta(days=170)
    return Documented(
        source=ReasonSource.visit,
        recorded_on=visit.date(),
        recorded_at=visit,
        due_on=(now + timedelta(days=14)).date(),
    )


def send_step(
    sequence_id: str | None = None,
    step: int = 1,
    *,
    workflow: str = "cancellation_recovery",
    channel: str = "sms",
    fallback: str | None = None,
    purpose: Purpose = Purpose.care,
    service_line: ServiceLine = ServiceLine.skin_check,
    urgency: ClinicalUrgency = ClinicalUrgency.routine,
    template_key: str | None = None,
    expires_in: timedelta = timedelta(hours=24),
    provider_id: str | None = "dr-1",
    documented: Documented | None = None,
    policy: OutreachPolicy | None = None,
) -> SendStep:
    """A command as the sequencer makes one. The zone is left to the patient's card (tests pick
    a zone where it is day now); the policy is the default unless given."""
    now = datetime.now(UTC)
    facts = documented or documented_for(workflow, now)
    return SendStep(
        documented=facts,
        overdue=False if facts.due_on is not None else None,
        policy=policy or DEFAULT_POLICY,
        sequence_id=sequence_id or f"seq-{uuid.uuid4().hex[:10]}",
        step=step,
        workflow_key=workflow,
        template_key=template_key or f"{workflow}.{step}",
        channel=channel,
        fallback_channel=fallback,
        tone=Tone.supportive,
        purpose=purpose,
        clinical_urgency=urgency,
        segment=Segment.cancelled_not_rescheduled,
        service_line=service_line,
        provider_id=provider_id,
        location_id="loc-1",
        not_before=now - timedelta(minutes=1),
        expires_at=now + expires_in,
    )


def envelope(payload: Payload, patient_key: str, **kw: Any) -> Envelope[Any]:
    clinic = patient_key.split(":", 1)[0]
    return new_event(
        payload, clinic_id=clinic, patient_key=patient_key, occurred_at=datetime.now(UTC), **kw
    )


def delivery(event: Envelope[Any], topic: str = "outreach.commands.v1") -> Delivery:
    return Delivery(event, topic, 0, 0, Context(), {})


@dataclass
class Messenger:
    """The running service: its app, an HTTP client, its runtime and context."""

    app: FastAPI
    client: httpx.AsyncClient
    runtime: Runtime
    settings: RevisitSettings
    bootstrap: str

    @property
    def ctx(self) -> MessengerContext:
        ctx: MessengerContext = self.runtime.extras["messenger"]
        return ctx

    def token(self, role: str = "admin", clinics: list[str] | str = "*") -> dict[str, str]:
        jwt = issue_staff_token(
            SECRET,
            subject=f"{role}-1",
            role=role,
            clinics=clinics,
            ttl=timedelta(hours=1),  # type: ignore[arg-type]
        )
        return {"Authorization": f"Bearer {jwt}"}

    async def handle(self, handler_name: str, *events: Envelope[Any]) -> None:
        """Run one of the service's batch handlers on these events, in one transaction."""
        from services.messenger import handlers

        if handler_name == "contacts":
            handler = handlers.contacts_handler(self.runtime)
        elif handler_name == "commands":
            handler = handlers.commands_handler(self.runtime, self.ctx)
        else:
            handler = handlers.escalations_handler(self.runtime)
        async with self.runtime.sessions() as session, session.begin():
            await handler(session, [delivery(e) for e in events])

    async def new_patient(self, clinic: str | None = None, **kw: Any) -> tuple[str, str]:
        """A patient with a phone (and the given options); returns (patient_key, phone)."""
        clinic = clinic or new_clinic()
        patient_key = f"{clinic}:pt-{uuid.uuid4().hex[:8]}"
        number = kw.pop("phone_number", None) or phone()
        await self.handle(
            "contacts", envelope(patient_upserted(phone_number=number, **kw), patient_key)
        )
        return patient_key, number

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.runtime.sessions() as session:
            return (await session.execute(text(sql), params)).scalar()

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        async with self.runtime.sessions() as session:
            return [dict(r._mapping) for r in (await session.execute(text(sql), params)).all()]

    async def sandbox(self, patient_key: str) -> list[dict[str, Any]]:
        return await self.rows(
            "SELECT * FROM messenger.sandbox_messages WHERE patient_key = :pk "
            "ORDER BY created_at, message_id",
            pk=patient_key,
        )

    async def outbound(
        self, patient_key: str, count: int, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` outbound sandbox messages reached the patient."""
        found: list[dict[str, Any]] = []

        async def enough() -> bool:
            nonlocal found
            found = [m for m in await self.sandbox(patient_key) if m["direction"] == "outbound"]
            return len(found) >= count

        await wait_for(enough, timeout)
        return found

    async def reply(self, patient_key: str, body: str, channel: str = "sms") -> dict[str, Any]:
        clinic = patient_key.split(":", 1)[0]
        response = await self.client.post(
            "/sandbox/reply",
            json={
                "clinic_id": clinic,
                "patient_key": patient_key,
                "body": body,
                "channel": channel,
            },
            headers=self.token("operator", [clinic]),
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def events(
        self,
        topic: str,
        patient_key: str,
        until: Callable[[list[Envelope[Any]]], bool],
        timeout: float = 10.0,
    ) -> list[Envelope[Any]]:
        """Events for this patient on ``topic`` (from the beginning) once ``until`` holds."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        found: list[Envelope[Any]] = []
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                await consumer.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic) or set()
            consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
            await consumer.seek_to_beginning()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not until(found):
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for r in records:
                        if r.key is not None and r.key.decode() == patient_key:
                            found.append(parse_event(r.value or b""))
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), timeout=5)
        return found


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.05)


def types_of(events: list[Envelope[Any]]) -> list[str]:
    return [e.type for e in events]


@pytest.fixture(scope="package")
async def messenger(pg: Any, kafka: Any) -> AsyncIterator[Messenger]:
    await migrate_all(pg.dsn)
    await ensure_topics(kafka.bootstrap, 3)
    settings = RevisitSettings(
        db=DatabaseSettings(database_url=pg.dsn),
        kafka=KafkaSettings(
            kafka_bootstrap_servers=kafka.bootstrap,
            kafka_session_timeout_ms=6000,
            kafka_heartbeat_interval_ms=1000,
            kafka_max_poll_records=100,
        ),
        auth=AuthSettings(revisit_jwt_secret=SECRET),
        revisit_profile="test",
        revisit_poll_interval_ms=50,
    )
    messenger_settings = MessengerSettings(
        twilio_auth_token=TWILIO_TOKEN,
        public_url=PUBLIC_URL,
        email_inbound_secret=EMAIL_SECRET,
        lease_seconds=4.0,
        link_base_url=LINK_BASE,
    )
    app = create_app(settings, messenger_settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            yield Messenger(app, client, app.state.runtime, settings, kafka.bootstrap)
