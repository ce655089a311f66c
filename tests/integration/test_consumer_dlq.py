"""The consumer runner on the real broker: bad messages are dead-lettered, good ones carry on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.config import KafkaSettings
from shared.consumer import ConsumerRunner, Delivery, HandlerFailed, Subscription, attach
from shared.inbox import Inbox
from shared.kafka import make_broker
from shared.topics import Topic
from tests.integration.conftest import (
    Scratch,
    effect_writer,
    envelope_record,
    header,
    patient_event,
    read_topic,
    record,
    wait_for,
)

pytestmark = pytest.mark.integration


class RecordingProducer:
    """The real producer, plus a list of the topics it was asked to send to."""

    def __init__(self, inner: AIOKafkaProducer) -> None:
        self.inner = inner
        self.topics: list[str] = []

    async def send(self, topic: str, **kw: Any) -> Any:
        self.topics.append(topic)
        return await self.inner.send(topic, **kw)


def _runner(scratch: Scratch, sessions: async_sessionmaker[AsyncSession], producer: Any) -> Any:
    return ConsumerRunner("it", sessions, Inbox(scratch.schema), producer)


async def _dead_letters(
    bootstrap: str, topic: Topic, n: int, timeout: float = 10.0
) -> list[ConsumerRecord[bytes, bytes]]:
    found = await read_topic(bootstrap, topic.dlq, until=lambda f: len(f) >= n, timeout=timeout)
    return sorted(found, key=lambda r: int(header(r, "dlq.source.offset") or -1))


async def test_malformed_messages_are_dead_lettered_with_their_bytes_and_why(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    producer: AIOKafkaProducer,
    fresh_topic: Topic,
    topics: str,
) -> None:
    runner = _runner(scratch, sessions, producer)
    sub = Subscription((fresh_topic,), "dlq", effect_writer(scratch))
    good_before, good_after = patient_event(), patient_event()
    wire = json.loads(patient_event().to_bytes())
    unknown_type = json.dumps({**wire, "type": "NoSuchThing"}).encode()
    bad_field = json.loads(patient_event().to_bytes())
    bad_field["payload"]["source"]["record_id"] = "has a space"
    bad_field_bytes = json.dumps(bad_field).encode()
    other = patient_event()
    t = fresh_topic.name
    bad = [
        # (record, the words its dlq.error must contain)
        (record(t, b"\x00not json{", b"clinic-it:pt-x", offset=1, partition=2), "not JSON"),
        (record(t, unknown_type, wire["patient_key"].encode(), offset=2), "NoSuchThing"),
        (
            record(t, bad_field_bytes, bad_field["patient_key"].encode(), offset=3),
            "source.record_id",
        ),
        (record(t, other.to_bytes(), b"clinic-it:pt-someone-else", offset=4), "patient_key"),
    ]
    batch = [
        envelope_record(good_before, t, offset=0),
        *(rec for rec, _ in bad),
        envelope_record(good_after, t, offset=5),
    ]

    await runner.handle_records(sub, batch)

    assert sorted(await scratch.effects()) == sorted(
        [str(good_before.event_id), str(good_after.event_id)]
    )
    letters = await _dead_letters(topics, fresh_topic, len(bad))
    assert len(letters) == len(bad)
    for letter, (source, words) in zip(letters, bad, strict=True):
        assert letter.value == source.value  # the original bytes, untouched
        assert letter.key == source.key
        assert header(letter, "dlq.reason") == "malformed"
        assert words in (header(letter, "dlq.error") or ""), header(letter, "dlq.error")
        assert header(letter, "dlq.consumer") == "it"
        assert header(letter, "dlq.source.topic") == t
        assert header(letter, "dlq.source.partition") == str(source.partition)
        assert header(letter, "dlq.source.offset") == str(source.offset)


@pytest.mark.parametrize(
    ("error", "reason", "detail"),
    [
        (HandlerFailed("segment rule refused the visit"), "HandlerFailed", "segment rule refused"),
        # Other exceptions may quote data in their text: only their class is dead-lettered.
        (ValueError("pt-secret detail"), "ValueError", ""),
    ],
    ids=["HandlerFailed", "other-exception"],
)
async def test_a_handler_that_fails_for_one_event_dead_letters_only_that_event(
    error: Exception,
    reason: str,
    detail: str,
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    producer: AIOKafkaProducer,
    fresh_topic: Topic,
    topics: str,
) -> None:
    events = [patient_event() for _ in range(4)]
    poison = events[2]
    write = effect_writer(scratch)

    async def handler(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        await write(session, deliveries)  # written first: must roll back with the failure
        if any(d.envelope.event_id == poison.event_id for d in deliveries):
            raise error

    runner = _runner(scratch, sessions, producer)
    sub = Subscription((fresh_topic,), "poison", handler)
    records = [envelope_record(e, fresh_topic.name, offset=i) for i, e in enumerate(events)]

    await runner.handle_records(sub, records)

    assert sorted(await scratch.effects()) == sorted(
        str(e.event_id) for e in events if e is not poison
    )
    inbox = await scratch.column("SELECT event_id FROM {s}.inbox")
    assert poison.event_id not in inbox and len(inbox) == 3
    letters = await _dead_letters(topics, fresh_topic, 1)
    assert len(letters) == 1
    assert letters[0].value == poison.to_bytes()
    assert letters[0].key == poison.patient_key.encode()
    assert header(letters[0], "dlq.reason") == reason
    assert header(letters[0], "dlq.source.offset") == "2"
    error_text = header(letters[0], "dlq.error") or ""
    assert (detail in error_text) if detail else error_text == ""


@pytest.mark.parametrize(
    "transient",
    [
        OperationalError("INSERT ...", {}, Exception("server closed the connection")),
        ConnectionError("database unreachable"),
    ],
    ids=["OperationalError", "ConnectionError"],
)
async def test_a_transient_failure_fails_the_batch_for_redelivery_and_dead_letters_nothing(
    transient: Exception,
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    producer: AIOKafkaProducer,
    fresh_topic: Topic,
) -> None:
    events = [patient_event() for _ in range(3)]
    write = effect_writer(scratch)
    calls = 0

    async def flaky(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        nonlocal calls
        calls += 1
        await write(session, deliveries)
        if calls == 1:
            raise transient

    recorder = RecordingProducer(producer)
    runner = _runner(scratch, sessions, recorder)
    sub = Subscription((fresh_topic,), "flaky", flaky)
    records = [envelope_record(e, fresh_topic.name, offset=i) for i, e in enumerate(events)]
    garbage = record(fresh_topic.name, b"<xml/>", b"clinic-it:pt-x", offset=len(events))

    with pytest.raises(type(transient)):
        await runner.handle_records(sub, [*records, garbage])
    assert await scratch.effects() == []
    assert recorder.topics == []  # nothing dead-lettered, not even the garbage: all comes back

    await runner.handle_records(sub, [*records, garbage])  # the redelivery
    assert sorted(await scratch.effects()) == sorted(str(e.event_id) for e in events)
    assert recorder.topics == [fresh_topic.dlq]  # the garbage, once
    assert calls == 2


async def test_a_faststream_subscriber_dead_letters_bad_messages_and_keeps_consuming(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    producer: AIOKafkaProducer,
    fresh_topic: Topic,
    topics: str,
    kafka_settings: KafkaSettings,
) -> None:
    first, second, flaky, later = (patient_event() for _ in range(4))
    write = effect_writer(scratch)
    failed_once = False

    async def handler(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        nonlocal failed_once
        await write(session, deliveries)
        if not failed_once and any(d.envelope.event_id == flaky.event_id for d in deliveries):
            failed_once = True
            raise ConnectionError("database unreachable")  # transient: nack, redeliver

    recorder = RecordingProducer(producer)
    runner = _runner(scratch, sessions, recorder)
    sub = Subscription((fresh_topic,), f"fs-{uuid.uuid4().hex[:8]}", handler)
    broker = make_broker(kafka_settings, "revisit-it")
    attach(broker, runner, sub, kafka_settings)

    async def send(value: bytes, key: str) -> None:
        await (await producer.send(fresh_topic.name, value, key=key.encode()))

    async def handled(*events: Any) -> bool:
        return set(await scratch.effects()) >= {str(e.event_id) for e in events}

    await send(first.to_bytes(), first.patient_key)
    await send(b"{not json", second.patient_key)
    await send(second.to_bytes(), second.patient_key)
    try:
        await asyncio.wait_for(broker.start(), timeout=20)
        assert await wait_for(lambda: handled(first, second), timeout=15)

        # After the bad message: a transient failure, another bad message, a good one.
        await send(flaky.to_bytes(), flaky.patient_key)
        await send(b"\xff\xfe", later.patient_key)
        await send(later.to_bytes(), later.patient_key)
        assert await wait_for(lambda: handled(flaky, later), timeout=15)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(broker.stop(), timeout=10)

    assert failed_once
    assert sorted(await scratch.effects()) == sorted(
        str(e.event_id) for e in (first, second, flaky, later)
    )
    letters = await _dead_letters(topics, fresh_topic, 2)
    assert sorted(r.value for r in letters) == sorted([b"{not json", b"\xff\xfe"])
    assert all(header(r, "dlq.reason") == "malformed" for r in letters)
    assert all("not JSON" in (header(r, "dlq.error") or "") for r in letters)
