"""The segmenter running for real: broker in, Postgres, timers, sweep, relay out, and its API.

The shared controlled clock is moved months forward; eligibility and escalation events are read
back from the broker. One service start for the whole module (a group join takes seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine

from services.segmenter.app import build_spec
from services.segmenter.settings import SegmenterSettings
from shared.auth import issue_staff_token
from shared.clock import advance_clock, set_clock
from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings
from shared.events import Envelope, parse_event
from shared.events.common import ServiceLine
from shared.events.ehr import Sentiment
from shared.events.eligibility import LeftReason
from shared.runtime import build_app
from shared.topics import EHR_EVENTS, ELIGIBILITY, ESCALATIONS
from tests.segmenter.factory import Ehr, at

pytestmark = pytest.mark.integration
L = ServiceLine
SECRET = "s" * 40
RUN = uuid.uuid4().hex[:8]
CLINIC = f"clinic-fl-{RUN}"
OTHER = f"clinic-pm-{RUN}"
T0 = at("2026-01-12", 9)


@dataclass
class Service:
    client: httpx.AsyncClient
    engine: AsyncEngine
    producer: AIOKafkaProducer
    seen: list[Envelope[Any]] = field(default_factory=list)
    headers: dict[Any, dict[str, str]] = field(default_factory=dict)  # event id -> headers

    async def send(self, *events: Envelope[Any]) -> None:
        for e in events:
            await self.producer.send_and_wait(
                EHR_EVENTS.name, e.to_bytes(), key=e.patient_key.encode()
            )

    async def until(
        self, check: Callable[[list[Envelope[Any]]], bool], timeout: float = 15.0
    ) -> list[Envelope[Any]]:
        deadline = time.monotonic() + timeout
        while not check(self.seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; saw {[e.type for e in self.seen]}")
            await asyncio.sleep(0.05)
        return self.seen

    def of(self, patient_key: str, event_type: str | None = None) -> list[Any]:
        return [
            e.payload
            for e in self.seen
            if e.patient_key == patient_key and (event_type is None or e.type == event_type)
        ]


def token(role: str, clinics: Any) -> dict[str, str]:
    jwt = issue_staff_token(
        SECRET,
        subject=f"{role}-1",
        role=role,
        clinics=clinics,
        ttl=timedelta(hours=1),  # type: ignore[arg-type]
    )
    return {"Authorization": f"Bearer {jwt}"}


async def _read(
    bootstrap: str,
    out: list[Envelope[Any]],
    headers: dict[Any, dict[str, str]],
    stop: asyncio.Event,
) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        await consumer.topics()
        parts = [
            TopicPartition(t, p)
            for t in (ELIGIBILITY.name, ESCALATIONS.name)
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning()
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=100)).values():
                for r in records:
                    key = (r.key or b"").decode()
                    if key.startswith((f"{CLINIC}:", f"{OTHER}:")):
                        event = parse_event(r.value or b"")
                        headers[event.event_id] = {k: v.decode() for k, v in r.headers}
                        out.append(event)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), timeout=5)


@pytest.fixture(scope="module")
async def svc(seg_dsn: str, seg_engine: AsyncEngine, seg_topics: str) -> AsyncIterator[Service]:
    await set_clock(seg_engine, T0, rate=0)
    kafka = KafkaSettings(kafka_bootstrap_servers=seg_topics, kafka_max_poll_records=200)
    settings = RevisitSettings(
        db=DatabaseSettings(database_url=seg_dsn),
        kafka=kafka,
        auth=AuthSettings(revisit_jwt_secret=SECRET),
        revisit_clock="controlled",
        revisit_poll_interval_ms=50,
    )
    app = build_app(build_spec(SegmenterSettings()), settings)
    producer = AIOKafkaProducer(bootstrap_servers=seg_topics, acks="all")
    stop = asyncio.Event()
    seen: list[Envelope[Any]] = []
    headers: dict[Any, dict[str, str]] = {}
    reader = asyncio.create_task(_read(seg_topics, seen, headers, stop))
    await producer.start()
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://seg") as client:
                yield Service(client, seg_engine, producer, seen, headers)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader, timeout=5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), timeout=5)
        await set_clock(seg_engine, datetime.now(UTC), rate=1)


async def _processed(svc: Service, patient_key: str, records: int) -> dict[str, Any]:
    """The journey once the service has stored ``records`` records for the patient."""
    deadline = time.monotonic() + 15
    while True:
        r = await svc.client.get(
            f"/patients/{patient_key}/journey", headers=token("viewer", [CLINIC, OTHER])
        )
        if r.status_code == 200:
            body: dict[str, Any] = r.json()
            count = sum(len(body[k]) for k in ("appointments", "visits", "follow_ups", "feedback"))
            if count >= records:
                return body
        if time.monotonic() > deadline:
            raise AssertionError(f"journey not stored in time: {r.status_code}")
        await asyncio.sleep(0.1)


async def test_a_patient_moves_through_segments_as_the_clock_moves_months_forward(
    svc: Service,
) -> None:
    ehr = Ehr(f"{CLINIC}:pt-a")
    cancel = ehr.cancelled("a-1", at("2026-01-20"), L.acne, at("2026-01-12", 8))
    await svc.send(
        ehr.visit("v-1", at("2026-01-10"), L.neurotoxin),
        ehr.follow_up(
            "f-1",
            "2026-01-10",
            L.skin_check,
            due_on="2026-06-15",
            visit_id="v-1",
            note="NOTE# staff only words",
        ),
        cancel,
    )
    await _processed(svc, ehr.patient_key, 3)
    assert svc.of(ehr.patient_key) == []  # the cancellation is due two hours after it
    await advance_clock(svc.engine, timedelta(hours=2))
    await svc.until(lambda _: len(svc.of(ehr.patient_key)) == 1)
    (cnr,) = svc.of(ehr.patient_key, "PatientBecameEligible")
    assert cnr.segment.value == "cancelled_not_rescheduled"
    # Emitted by the sweep two hours later, it still continues the cancellation's story.
    (wire,) = [e for e in svc.seen if e.patient_key == ehr.patient_key]
    assert (wire.correlation_id, wire.causation_id) == (cancel.correlation_id, cancel.event_id)
    assert svc.headers[wire.event_id].get("traceparent", "").startswith("00-")
    # Redelivered (same event id) and resent (same content, new id): no second eligibility.
    await svc.send(cancel, ehr.event(cancel.payload))
    await advance_clock(svc.engine, timedelta(days=30))  # the cancellation's window closes
    await svc.until(lambda _: len(svc.of(ehr.patient_key)) == 2)
    assert svc.of(ehr.patient_key)[-1].reason is LeftReason.window_closed
    await advance_clock(svc.engine, timedelta(days=46))  # 2026-03-28: neurotoxin maintenance
    await svc.until(lambda _: len(svc.of(ehr.patient_key)) == 3)
    cosmetic = svc.of(ehr.patient_key)[-1]
    assert cosmetic.segment.value == "cosmetic_maintenance_due" and cosmetic.needs_marketing_consent
    await advance_clock(svc.engine, timedelta(days=66))  # 2026-06-02: the follow-up comes due
    await svc.until(lambda _: len(svc.of(ehr.patient_key)) == 5)
    left, follow_up = svc.of(ehr.patient_key)[-2:]
    assert (left.eligibility_id, left.reason) == (cosmetic.eligibility_id, LeftReason.superseded)
    assert follow_up.segment.value == "follow_up_not_booked"
    assert "NOTE#" not in follow_up.reason
    await svc.send(ehr.booked("a-2", at("2026-06-20"), L.skin_check, at("2026-06-02", 10)))
    await svc.until(lambda _: len(svc.of(ehr.patient_key)) == 7)
    booked, back = svc.of(ehr.patient_key)[-2:]
    assert (booked.eligibility_id, booked.reason) == (follow_up.eligibility_id, LeftReason.booked)
    assert back.eligibility_id == f"{cosmetic.eligibility_id}-2"

    explained = (
        await svc.client.get(
            f"/patients/{ehr.patient_key}/segments", headers=token("viewer", [CLINIC])
        )
    ).json()
    by_segment = {s["segment"]: s for s in explained["segments"]}
    assert explained["primary"]["eligibility_id"] == back.eligibility_id
    fu = by_segment["follow_up_not_booked"]["needs"][0]
    assert fu["ended"]["reason"] == "booked" and fu["ended"]["by"] == {
        "kind": "appointment",
        "id": "a-2",
    }
    assert fu["details"]["plan note (staff only)"] == "NOTE# staff only words"
    assert by_segment["lapsed_patient"]["status"] == "out"


async def test_a_poor_experience_raises_one_service_recovery_case(svc: Service) -> None:
    ehr = Ehr(f"{CLINIC}:pt-upset")
    feedback = ehr.feedback("fb-1", at("2026-05-30"), Sentiment.poor)
    await svc.send(ehr.visit("v-1", at("2026-05-01"), L.filler), feedback, feedback)
    await svc.until(lambda _: bool(svc.of(ehr.patient_key, "EscalationRaised")))
    (case,) = svc.of(ehr.patient_key, "EscalationRaised")
    assert case.case_type.value == "poor_experience" and case.severity.value == "normal"
    assert svc.of(ehr.patient_key, "PatientBecameEligible") == []


async def test_the_api_refuses_without_credentials_or_outside_the_clinic_scope(
    svc: Service,
) -> None:
    path = f"/patients/{CLINIC}:pt-a/segments"
    assert (await svc.client.get(path)).status_code == 401
    refused = await svc.client.get(path, headers=token("viewer", ["clinic-elsewhere"]))
    assert refused.status_code == 403 and CLINIC not in refused.text
    missing = await svc.client.get(
        f"/patients/{CLINIC}:nobody/journey", headers=token("viewer", [CLINIC])
    )
    assert missing.status_code == 404


async def test_the_preview_lists_who_will_become_due_and_why_without_sending(svc: Service) -> None:
    ehr = Ehr(f"{CLINIC}:pt-soon")
    await svc.send(ehr.follow_up("f-9", "2026-05-20", L.biopsy_follow_up, due_on="2026-06-25"))
    await _processed(svc, ehr.patient_key, 1)
    r = await svc.client.get(
        "/segments/follow_up_not_booked/preview",
        params={"clinic_id": CLINIC, "days": 30},
        headers=token("viewer", [CLINIC]),
    )
    assert r.status_code == 200
    (row,) = [p for p in r.json()["patients"] if p["patient_key"] == ehr.patient_key]
    assert row["surfaces_at"].startswith("2026-06-11") and row["outlook"] == (
        "becomes the primary segment"
    )
    assert row["reason"].startswith("Follow-up for biopsy follow-up")
    assert svc.of(ehr.patient_key) == []
    listed = await svc.client.get(
        "/segments", params={"clinic_id": CLINIC}, headers=token("viewer", [CLINIC])
    )
    counts = {s["segment"]: s["memberships"] for s in listed.json()["segments"]}
    assert len(counts) == 8 and counts["follow_up_not_booked"].get("upcoming", 0) >= 1


async def test_an_admin_changes_a_clinics_parameters_and_its_patients_are_reevaluated(
    svc: Service,
) -> None:
    ehr = Ehr(f"{OTHER}:pt-botox")
    await svc.send(ehr.visit("v-1", at("2026-05-25"), L.neurotoxin))
    await _processed(svc, ehr.patient_key, 1)
    path = f"/clinics/{OTHER}/segment-params/cosmetic_maintenance_due"
    body = {"maintenance_days": {"neurotoxin": 20}, "lead_days": 14}
    viewer = await svc.client.put(path, json=body, headers=token("viewer", [OTHER]))
    assert viewer.status_code == 403
    bad = await svc.client.put(path, json={"lead_days": -1}, headers=token("admin", [OTHER]))
    assert bad.status_code == 422 and "lead_days" in bad.text
    ok = await svc.client.put(path, json=body, headers=token("admin", [OTHER]))
    assert ok.status_code == 200 and ok.json()["overridden"] is True
    await svc.until(lambda _: bool(svc.of(ehr.patient_key, "PatientBecameEligible")))
    (due,) = svc.of(ehr.patient_key, "PatientBecameEligible")
    assert "20-day maintenance window opens 2026-06-14" in due.reason
    read = await svc.client.get(
        f"/clinics/{OTHER}/segment-params", headers=token("viewer", [OTHER])
    )
    assert read.json()["overridden"] == ["cosmetic_maintenance_due"]
    reset = await svc.client.delete(path, headers=token("admin", [OTHER]))
    assert reset.json()["parameters"]["maintenance_days"]["neurotoxin"] == 90
