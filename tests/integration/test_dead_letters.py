"""Dead letters you can work with: list, show, replay into the original topic with the
original key, purge; by the command line and by the admin API. Real broker, real Postgres."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.auth import issue_staff_token
from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings
from shared.consumer import ConsumerRunner, Subscription
from shared.dlq import DeadLetters, Filter
from shared.inbox import Inbox
from shared.kafka import ensure_topics
from shared.runtime import ServiceSpec, build_app
from shared.topics import Topic
from tests.integration.conftest import (
    Scratch,
    effect_writer,
    envelope_record,
    header,
    patient_event,
    read_topic,
    record,
)

pytestmark = pytest.mark.integration
SECRET = "dlq-tests-" + "s" * 40


async def _dead_letter_two(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    producer: AIOKafkaProducer,
    topic: Topic,
) -> tuple[Any, bytes]:
    """A malformed message and a valid event whose handler failed, both dead-lettered."""
    poison = patient_event()

    async def handler(session: AsyncSession, deliveries: Any) -> None:
        await effect_writer(scratch)(session, deliveries)
        raise ValueError("a bug, fixed since")

    runner = ConsumerRunner("it", sessions, Inbox(scratch.schema), producer)
    sub = Subscription((topic,), "dlq-tool", handler)
    garbage = b"{not json"
    await runner.handle_records(
        sub,
        [
            record(topic.name, garbage, b"clinic-it:pt-garbage", offset=0),
            envelope_record(poison, topic.name, offset=1),
        ],
    )
    return poison, garbage


async def test_dead_letters_are_listed_shown_replayed_with_their_key_and_purged(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    producer: AIOKafkaProducer,
    fresh_topic: Topic,
    topics: str,
    engine: AsyncEngine,
) -> None:
    poison, garbage = await _dead_letter_two(scratch, sessions, producer, fresh_topic)
    letters = DeadLetters(topics, engine)

    found = await letters.find(Filter(topics=[fresh_topic.name]))
    assert sorted(x.reason for x in found) == ["ValueError", "malformed"]
    [bad] = [x for x in found if x.reason == "ValueError"]
    assert bad.source_topic == fresh_topic.name and bad.source_offset == 1
    assert bad.key == poison.patient_key and bad.consumer == "it"
    [shown] = await letters.get([bad.id])
    assert shown.value == poison.to_bytes()
    assert [x.id for x in await letters.find(Filter([fresh_topic.name], reason="malformed"))] == [
        x.id for x in found if x.reason == "malformed"
    ]

    assert await letters.replay([bad], "test") == 1
    replayed = await read_topic(
        topics,
        fresh_topic.name,
        until=lambda f: any(header(r, "dlq.replayed_from") for r in f),
    )
    [again] = [r for r in replayed if header(r, "dlq.replayed_from") == bad.id]
    assert again.value == poison.to_bytes() and again.key == poison.patient_key.encode()

    [malformed] = [x for x in found if x.reason == "malformed"]
    assert await letters.purge([malformed], "test") == 1
    assert await letters.find(Filter(topics=[fresh_topic.name])) == []
    handled = await letters.find(Filter(topics=[fresh_topic.name], include_handled=True))
    assert sorted(x.handled or "" for x in handled) == ["purged", "replayed"]
    assert garbage in {x.value for x in handled}


async def test_the_command_line_lists_and_replays_dead_letters(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    producer: AIOKafkaProducer,
    fresh_topic: Topic,
    topics: str,
    migrated: str,
) -> None:
    await _dead_letter_two(scratch, sessions, producer, fresh_topic)
    env = {**os.environ, "DATABASE_URL": migrated, "KAFKA_BOOTSTRAP_SERVERS": topics}

    def revisit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "revisit", "dlq", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    listed = revisit("list", "--topic", fresh_topic.name, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["reason"] for r in rows) == ["ValueError", "malformed"]
    assert all("body" not in r for r in rows)  # a listing never shows the bytes
    refused = revisit("purge", "--topic", fresh_topic.name)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    replay = revisit("replay", "--topic", fresh_topic.name, "--reason", "ValueError")
    assert replay.returncode == 0, replay.stderr
    assert "replayed 1" in replay.stdout
    left = json.loads(revisit("list", "--topic", fresh_topic.name, "--json").stdout)
    assert [r["reason"] for r in left] == ["malformed"]


async def test_the_admin_api_lists_shows_and_replays_for_an_all_clinic_admin_only(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    producer: AIOKafkaProducer,
    fresh_topic: Topic,
    migrated: str,
    kafka_settings: KafkaSettings,
) -> None:
    poison, _ = await _dead_letter_two(scratch, sessions, producer, fresh_topic)
    settings = RevisitSettings(
        db=DatabaseSettings(database_url=migrated),
        kafka=kafka_settings,
        auth=AuthSettings(revisit_jwt_secret=SECRET),
        revisit_profile="test",
    )
    app = build_app(ServiceSpec(name="it-admin", schema=scratch.schema), settings)

    def token(clinics: Any) -> dict[str, str]:
        jwt = issue_staff_token(
            SECRET, subject="ops", role="admin", clinics=clinics, ttl=timedelta(hours=1)
        )
        return {"Authorization": f"Bearer {jwt}"}

    admin = token("*")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://it") as client:
            narrow = await client.get("/admin/dlq", headers=token(["clinic-it"]))
            assert narrow.status_code == 403
            listed = await client.get(
                "/admin/dlq", params={"topic": fresh_topic.name}, headers=admin
            )
            assert listed.status_code == 200, listed.text
            [bad] = [x for x in listed.json()["dead_letters"] if x["reason"] == "ValueError"]
            shown = await client.get(f"/admin/dlq/{bad['id']}", headers=admin)
            assert shown.json()["body"]["event_id"] == str(poison.event_id)
            replay = await client.post(
                "/admin/dlq/replay", json={"ids": [bad["id"]]}, headers=admin
            )
            assert replay.json() == {"replayed": 1, "ids": [bad["id"]]}
            nothing = await client.post("/admin/dlq/purge", json={}, headers=admin)
            assert nothing.status_code == 422


async def test_dead_letter_topics_are_kept_thirty_days_by_configuration(topics: str) -> None:
    topic = Topic("it.retention.v1", "retention test")
    await ensure_topics(topics, 1, names=[topic.name, topic.dlq], dlq_retention_days=30)
    admin = AIOKafkaAdminClient(bootstrap_servers=topics)
    await admin.start()
    try:
        [described] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic.dlq)]
        )
    finally:
        await admin.close()
    entries = described.to_object()["resources"][0]["config_entries"]
    configs = {c["config_names"]: c["config_value"] for c in entries}
    assert configs.get("retention.ms") == str(30 * 24 * 3600 * 1000)
