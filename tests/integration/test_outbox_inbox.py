"""The outbox and inbox against the real Postgres and broker: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.consumer import ConsumerRunner, Subscription
from shared.events import topic_for
from shared.inbox import Inbox
from shared.outbox import Outbox, OutboxRelay
from shared.topics import EHR_EVENTS, Topic
from tests.integration.conftest import (
    Scratch,
    effect_writer,
    envelope_record,
    header,
    patient_event,
    patient_key,
    read_topic,
    wait_for,
)

pytestmark = pytest.mark.integration


async def _stage(sessions: async_sessionmaker[AsyncSession], outbox: Outbox, *events: Any) -> None:
    async with sessions() as session, session.begin():
        await outbox.stage(session, events)


async def _outbox_ids(scratch: Scratch) -> list[str]:
    return [str(i) for i in await scratch.column("SELECT event_id FROM {s}.outbox ORDER BY id")]


def _relay(engine: AsyncEngine, scratch: Scratch, producer: Any, pg: Any, **kw: Any) -> OutboxRelay:
    return OutboxRelay(engine, scratch.schema, producer, listen_dsn=pg.plain_dsn, **kw)


class FailingProducer:
    """A producer whose broker is unreachable: at ``send`` or when the ack is awaited."""

    def __init__(self, at: str) -> None:
        self.at = at
        self.calls = 0

    async def send(
        self, topic: str, value: Any = None, key: Any = None, headers: Any = None
    ) -> Any:
        self.calls += 1
        if self.at == "send":
            raise KafkaConnectionError("broker unreachable")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_exception(KafkaConnectionError("no acknowledgement"))
        return future


class RecordingProducer:
    """Acknowledges every send at once and remembers what was sent, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(
        self, topic: str, value: Any = None, key: Any = None, headers: Any = None
    ) -> Any:
        self.sent.append((topic, key, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        # Give the other relay's loop a chance to run between sends.
        await asyncio.sleep(0)
        return future


# --- outbox -------------------------------------------------------------------------------------


async def test_an_event_staged_in_a_rolled_back_transaction_never_reaches_the_outbox(
    scratch: Scratch, sessions: async_sessionmaker[AsyncSession]
) -> None:
    outbox = Outbox(scratch.schema)
    lost, kept = patient_event(), patient_event()

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with sessions() as session, session.begin():
            assert await outbox.stage(session, [lost]) == 1
            raise Boom
    await _stage(sessions, outbox, kept)

    assert await _outbox_ids(scratch) == [str(kept.event_id)]


async def test_a_committed_event_is_published_to_its_topic_keyed_by_patient_with_its_trace(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    producer: AIOKafkaProducer,
    topics: str,
    pg: Any,
) -> None:
    outbox = Outbox(scratch.schema)
    event = patient_event()
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("handle") as span:
        await _stage(sessions, outbox, event)
        trace_id = format(span.get_span_context().trace_id, "032x")

    assert await _relay(engine, scratch, producer, pg).publish_once() == 1

    topic = topic_for(event.type).name
    assert topic == EHR_EVENTS.name
    found = await read_topic(
        topics, topic, keep=lambda r: r.key == event.patient_key.encode(), until=bool
    )
    assert len(found) == 1
    assert found[0].value == event.to_bytes()
    traceparent = header(found[0], "traceparent")
    assert traceparent is not None and traceparent.split("-")[1] == trace_id
    assert await _outbox_ids(scratch) == []


async def test_the_relay_publishes_each_patients_events_in_commit_order_and_deletes_them(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    producer: AIOKafkaProducer,
    topics: str,
    pg: Any,
) -> None:
    outbox = Outbox(scratch.schema)
    keys = [patient_key() for _ in range(3)]
    committed: dict[str, list[bytes]] = defaultdict(list)
    for round_ in range(4):  # interleave the patients, one transaction per event
        for key in keys:
            event = patient_event(key, record_id=f"rec-{round_}")
            await _stage(sessions, outbox, event)
            committed[key].append(event.to_bytes())

    relay = _relay(engine, scratch, producer, pg, batch_size=5)  # several batches
    published = []
    while count := await relay.publish_once():
        published.append(count)

    assert published == [5, 5, 2]
    assert await _outbox_ids(scratch) == []
    wanted = {k.encode() for k in keys}
    found = await read_topic(
        topics, EHR_EVENTS.name, keep=lambda r: r.key in wanted, until=lambda f: len(f) >= 12
    )
    received: dict[str, list[bytes]] = defaultdict(list)
    for rec in sorted(found, key=lambda r: (r.partition, r.offset)):
        received[rec.key.decode()].append(rec.value)
    assert received == committed


@pytest.mark.parametrize("fails_at", ["send", "acknowledgement"])
async def test_a_relay_that_cannot_reach_the_broker_keeps_its_rows_for_a_later_attempt(
    fails_at: str,
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    producer: AIOKafkaProducer,
    topics: str,
    pg: Any,
) -> None:
    outbox = Outbox(scratch.schema)
    events = [patient_event(), patient_event()]
    await _stage(sessions, outbox, *events)
    broken = FailingProducer(at=fails_at)

    with pytest.raises(KafkaConnectionError):
        await _relay(engine, scratch, broken, pg).publish_once()

    assert broken.calls >= 1
    assert await _outbox_ids(scratch) == [str(e.event_id) for e in events]
    assert await _relay(engine, scratch, producer, pg).publish_once() == 2
    assert await _outbox_ids(scratch) == []
    wanted = {e.patient_key.encode() for e in events}
    found = await read_topic(
        topics, EHR_EVENTS.name, keep=lambda r: r.key in wanted, until=lambda f: len(f) >= 2
    )
    assert sorted(r.value for r in found) == sorted(e.to_bytes() for e in events)


async def test_only_one_relay_per_schema_publishes_and_each_event_leaves_once(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    pg: Any,
) -> None:
    outbox = Outbox(scratch.schema)
    sinks = [RecordingProducer(), RecordingProducer()]
    relays = [_relay(engine, scratch, sink, pg, batch_size=20, idle_wait=0.2) for sink in sinks]
    stops = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(r.run(s)) for r, s in zip(relays, stops, strict=True)]
    staged: list[bytes] = []
    try:
        for _ in range(10):  # commits arrive while both relays are running
            batch = [patient_event() for _ in range(15)]
            await _stage(sessions, outbox, *batch)
            staged.extend(e.to_bytes() for e in batch)

        async def drained() -> bool:
            return sum(r.published for r in relays) == len(staged) and not await _outbox_ids(
                scratch
            )

        assert await wait_for(drained, timeout=10)
    finally:
        for stop in stops:
            stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)

    sent = [value for sink in sinks for (_t, _k, value) in sink.sent]
    assert sorted(sent) == sorted(staged)  # every event, none twice
    assert sorted(r.published for r in relays) == [0, len(staged)]  # one leader did it all


async def test_a_standby_relay_takes_over_when_the_leader_stops(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    pg: Any,
) -> None:
    outbox = Outbox(scratch.schema)
    sinks = [RecordingProducer(), RecordingProducer()]
    relays = [_relay(engine, scratch, sink, pg, idle_wait=0.2) for sink in sinks]
    stops = [asyncio.Event(), asyncio.Event()]
    tasks = [asyncio.create_task(r.run(s)) for r, s in zip(relays, stops, strict=True)]
    try:
        first = patient_event()
        await _stage(sessions, outbox, first)

        async def first_published() -> bool:
            return sum(r.published for r in relays) == 1

        assert await wait_for(first_published)
        leader = 0 if relays[0].published else 1
        stops[leader].set()
        await asyncio.wait_for(tasks[leader], timeout=5)

        second = patient_event()
        await _stage(sessions, outbox, second)

        async def standby_published() -> bool:
            return relays[1 - leader].published == 1

        # The standby retries the advisory lock once a second.
        assert await wait_for(standby_published, timeout=5)
        assert [v for (_t, _k, v) in sinks[1 - leader].sent] == [second.to_bytes()]
    finally:
        for stop in stops:
            stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)


# --- inbox --------------------------------------------------------------------------------------


async def test_inbox_claim_returns_only_the_ids_this_consumer_has_not_seen(
    scratch: Scratch, sessions: async_sessionmaker[AsyncSession]
) -> None:
    inbox = Inbox(scratch.schema)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with sessions() as session, session.begin():
        assert await inbox.claim(session, "segmenter.ehr", [a, b, a]) == {a, b}
    async with sessions() as session, session.begin():
        assert await inbox.claim(session, "segmenter.ehr", [b, c]) == {c}
        assert await inbox.claim(session, "segmenter.other", [a]) == {a}
        assert await inbox.claim(session, "segmenter.ehr", []) == set()
    # A claim whose transaction rolls back is forgotten: the event is handled on redelivery.
    d = uuid.uuid4()
    with pytest.raises(LookupError):
        async with sessions() as session, session.begin():
            assert await inbox.claim(session, "segmenter.ehr", [d]) == {d}
            raise LookupError("the handler failed")
    async with sessions() as session, session.begin():
        assert await inbox.claim(session, "segmenter.ehr", [d]) == {d}


def _runner(
    scratch: Scratch, sessions: async_sessionmaker[AsyncSession], producer: Any
) -> ConsumerRunner:
    return ConsumerRunner("it", sessions, Inbox(scratch.schema), producer)


async def test_an_event_delivered_twice_has_one_effect(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    producer: AIOKafkaProducer,
) -> None:
    runner = _runner(scratch, sessions, producer)
    sub = Subscription((EHR_EVENTS,), f"dup-{uuid.uuid4().hex[:8]}", effect_writer(scratch))
    event, other = patient_event(), patient_event()
    first = envelope_record(event, EHR_EVENTS.name, offset=10)
    again = envelope_record(event, EHR_EVENTS.name, offset=11)  # e.g. a relay that published twice

    await runner.handle_records(sub, [first, again, envelope_record(other, EHR_EVENTS.name, 12)])
    await runner.handle_records(sub, [first])  # redelivered after a lost offset commit

    assert sorted(await scratch.effects()) == sorted([str(event.event_id), str(other.event_id)])


async def test_a_crash_between_the_database_commit_and_the_offset_commit_loses_nothing(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    producer: AIOKafkaProducer,
    fresh_topic: Topic,
    topics: str,
) -> None:
    """Kafka redelivers everything after the last committed offset; the inbox drops repeats."""
    runner = _runner(scratch, sessions, producer)
    sub = Subscription((fresh_topic,), "crash", effect_writer(scratch))
    group = f"{runner.service}.{sub.name}.{uuid.uuid4().hex[:8]}"
    patients = [patient_key() for _ in range(4)]
    events = [patient_event(patients[i % 4]) for i in range(12)]
    for event in events:
        await producer.send(fresh_topic.name, event.to_bytes(), key=event.patient_key.encode())
    await producer.flush()

    # Partitions are assigned by hand (no join: a join costs half the session timeout) but the
    # offsets are committed to and fetched from the broker under a real group id.
    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=topics,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    async def fetch(c: AIOKafkaConsumer, n: int) -> list[ConsumerRecord[bytes, bytes]]:
        got: list[ConsumerRecord[bytes, bytes]] = []
        for _ in range(50):
            for batch in (await c.getmany(timeout_ms=200)).values():
                got.extend(batch)
            if len(got) >= n:
                break
        return got

    partitions = [TopicPartition(fresh_topic.name, p) for p in range(3)]
    first = consumer()
    await first.start()
    try:
        first.assign(partitions)
        fetched = await fetch(first, len(events))
        assert len(fetched) == len(events)
        by_partition: dict[int, list[Any]] = defaultdict(list)
        for rec in fetched:
            by_partition[rec.partition].append(rec)
        committed, handled_only = [], []
        for recs in by_partition.values():
            recs.sort(key=lambda r: r.offset)
            third = max(1, len(recs) // 3)
            committed += recs[:third]
            handled_only += recs[third : 2 * third]  # the rest were fetched, never handled

        await runner.handle_records(sub, committed)
        await first.commit(
            {
                TopicPartition(fresh_topic.name, p): max(
                    r.offset for r in committed if r.partition == p
                )
                + 1
                for p in {r.partition for r in committed}
            }
        )
        await runner.handle_records(sub, handled_only)
        # ... and the process dies here: the database committed, the offsets did not.
    finally:
        await asyncio.wait_for(first.stop(), timeout=10)

    second = consumer()
    await second.start()
    try:
        second.assign(partitions)
        redelivered = await fetch(second, len(events) - len(committed))
        where = {(r.partition, r.offset) for r in redelivered}
        assert where == {(r.partition, r.offset) for r in fetched} - {
            (r.partition, r.offset) for r in committed
        }
        await runner.handle_records(sub, redelivered)
    finally:
        await asyncio.wait_for(second.stop(), timeout=10)

    effects = await scratch.effects()
    assert sorted(effects) == sorted(str(e.event_id) for e in events)  # all, each once
    assert handled_only  # the crash really did leave handled-but-uncommitted records
    inbox_rows = await scratch.scalar("SELECT count(*) FROM {s}.inbox")
    assert inbox_rows == len(events)


async def test_staged_events_commit_with_the_handlers_effect_or_not_at_all(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    outbox = Outbox(scratch.schema)
    event = patient_event()
    with pytest.raises(RuntimeError):
        async with sessions() as session, session.begin():
            await session.execute(
                text(f"INSERT INTO {scratch.schema}.effects (consumer, ref) VALUES ('t', 'x')")
            )
            await outbox.stage(session, [event])
            raise RuntimeError("the handler failed after staging")
    assert await scratch.effects() == []
    assert await _outbox_ids(scratch) == []


async def test_a_commit_that_arrives_while_the_relay_is_publishing_is_not_left_waiting(
    scratch: Scratch,
    sessions: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
    pg: Any,
) -> None:
    outbox = Outbox(scratch.schema)
    sending, release = asyncio.Event(), asyncio.Event()

    class SlowProducer(RecordingProducer):
        async def send(
            self, topic: str, value: Any = None, key: Any = None, headers: Any = None
        ) -> Any:
            sending.set()
            await release.wait()
            return await super().send(topic, value, key, headers)

    sink = SlowProducer()
    # Only the NOTIFY of a commit can make it publish again in time.
    relay = _relay(engine, scratch, sink, pg, idle_wait=60)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    first, second = patient_event(), patient_event()
    try:
        await _stage(sessions, outbox, first)
        await asyncio.wait_for(sending.wait(), timeout=5)
        await _stage(sessions, outbox, second)  # its NOTIFY arrives mid-publish

        async def notified() -> bool:  # the relay's listener has received the NOTIFY
            return relay._wake.is_set()

        assert await wait_for(notified, timeout=2)
        release.set()

        async def both() -> bool:
            return relay.published == 2

        assert await wait_for(both, timeout=3)
        assert [v for (_t, _k, v) in sink.sent] == [first.to_bytes(), second.to_bytes()]
    finally:
        stop.set()
        release.set()
        await asyncio.wait_for(task, timeout=5)
