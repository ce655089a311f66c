"""Dead letters you can work with: list, show, replay into the original topic, purge.

Every topic has a ``.dlq`` twin (``shared.consumer``): the original bytes and key, and headers
saying why (``dlq.reason``: ``malformed`` or the failing handler's error class; ``dlq.error``:
a PHI-free detail), which consumer, and where it came from (source topic, partition, offset).
A dead letter is named ``<dlq topic>:<partition>:<offset>``.

Kafka cannot delete one record from a topic: the dead-letter topics keep theirs for their
retention (``KAFKA_DLQ_RETENTION_DAYS``, 30 by default), and ``platform.dead_letters_handled``
records which ones a person replayed or purged, so ``list`` shows what is left to look at.
Replaying sends the original bytes to the original topic with the original key (and a
``dlq.replayed_from`` header); the consumers' inboxes make a second replay of the same event
harmless. Shared by ``revisit dlq`` and the ``/admin/dlq`` routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from aiokafka import ConsumerRecord, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.config import KafkaSettings
from shared.kafka import make_consumer, make_producer
from shared.topics import ALL, DLQ_SUFFIX

REASON_MALFORMED = "malformed"


@dataclass(frozen=True)
class DeadLetter:
    dlq_topic: str
    partition: int
    offset: int
    at: datetime  # when it was dead-lettered (the broker's timestamp)
    source_topic: str
    source_partition: int | None
    source_offset: int | None
    reason: str
    error: str
    consumer: str
    key: str | None  # the patient_key: an opaque id
    value: bytes = field(repr=False)
    handled: str | None = None  # replayed | purged

    @property
    def id(self) -> str:
        return f"{self.dlq_topic}:{self.partition}:{self.offset}"

    def summary(self) -> dict[str, object]:
        """Everything but the bytes (which may hold PHI: shown only one at a time)."""
        return {
            "id": self.id,
            "dlq_topic": self.dlq_topic,
            "at": self.at.isoformat(),
            "source": f"{self.source_topic}:{self.source_partition}:{self.source_offset}",
            "reason": self.reason,
            "error": self.error,
            "consumer": self.consumer,
            "key": self.key,
            "bytes": len(self.value),
            "handled": self.handled,
        }


@dataclass(frozen=True)
class Filter:
    topics: Sequence[str] = ()  # source or DLQ topic names; empty: every topic
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    include_handled: bool = False

    def dlq_topics(self) -> list[str]:
        if not self.topics:
            return [t.dlq for t in ALL]
        return [t if t.endswith(DLQ_SUFFIX) else t + DLQ_SUFFIX for t in self.topics]

    def keeps(self, letter: DeadLetter) -> bool:
        return (
            (self.reason is None or letter.reason == self.reason)
            and (self.since is None or letter.at >= self.since)
            and (self.until is None or letter.at < self.until)
            and (self.include_handled or letter.handled is None)
        )


def parse_id(letter_id: str) -> tuple[str, int, int]:
    topic, partition, offset = letter_id.rsplit(":", 2)
    if not topic.endswith(DLQ_SUFFIX):
        raise ValueError(f"{letter_id!r} is not <dlq topic>:<partition>:<offset>")
    return topic, int(partition), int(offset)


async def read_letters(
    kafka: KafkaSettings | str, dlq_topics: Iterable[str], timeout_s: float = 20.0
) -> list[DeadLetter]:
    """Every record of the given dead-letter topics, oldest first per partition."""
    consumer = make_consumer(
        kafka,
        "revisit-dlq",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[DeadLetter] = []
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(topic, p)
            for topic in dlq_topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=300, max_records=5000)
            for records in batches.values():
                found += [_letter(r) for r in records]
            # Done once every partition's position reached its high-water mark (end_offsets
            # is unreliable on the embedded broker, see docs/kafka-notes.md).
            done = True
            for tp in partitions:
                end = consumer.highwater(tp)
                if end is None or await consumer.position(tp) < end:
                    done = False
                    break
            if done:
                break
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), timeout=5)
    return found


def _letter(record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    headers = {k: bytes(v).decode(errors="replace") for k, v in record.headers}
    topic, key = record.topic, record.key
    return DeadLetter(
        dlq_topic=topic,
        partition=record.partition,
        offset=record.offset,
        at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        source_topic=headers.get("dlq.source.topic") or topic.removesuffix(DLQ_SUFFIX),
        source_partition=_int(headers.get("dlq.source.partition")),
        source_offset=_int(headers.get("dlq.source.offset")),
        reason=headers.get("dlq.reason", ""),
        error=headers.get("dlq.error", ""),
        consumer=headers.get("dlq.consumer", ""),
        key=key.decode(errors="replace") if isinstance(key, bytes) else None,
        value=bytes(record.value or b""),
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def handled(engine: AsyncEngine) -> dict[tuple[str, int, int], str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT dlq_topic, dlq_partition, dlq_offset, action "
                "FROM platform.dead_letters_handled"
            )
        )
        return {(r[0], r[1], r[2]): r[3] for r in rows}


async def mark(engine: AsyncEngine, letters: Sequence[DeadLetter], action: str, actor: str) -> None:
    if not letters:
        return
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO platform.dead_letters_handled "
                "(dlq_topic, dlq_partition, dlq_offset, action, actor) "
                "VALUES (:t, :p, :o, :a, :actor) "
                "ON CONFLICT (dlq_topic, dlq_partition, dlq_offset) DO UPDATE SET "
                "action = EXCLUDED.action, actor = EXCLUDED.actor, at = now()"
            ),
            [
                {"t": x.dlq_topic, "p": x.partition, "o": x.offset, "a": action, "actor": actor}
                for x in letters
            ],
        )


class DeadLetters:
    """The dead letters of one deployment (its broker and its platform schema)."""

    def __init__(self, kafka: KafkaSettings | str, engine: AsyncEngine) -> None:
        self.kafka = kafka
        self.engine = engine

    async def find(self, where: Filter) -> list[DeadLetter]:
        letters = await read_letters(self.kafka, where.dlq_topics())
        done = await handled(self.engine)
        marked = [_with_handled(x, done.get((x.dlq_topic, x.partition, x.offset))) for x in letters]
        return sorted((x for x in marked if where.keeps(x)), key=lambda x: (x.at, x.id))

    async def get(self, ids: Sequence[str]) -> list[DeadLetter]:
        """The named dead letters (KeyError naming the first one that does not exist)."""
        wanted = [parse_id(i) for i in ids]
        topics = sorted({t for t, _, _ in wanted})
        found = {
            (x.dlq_topic, x.partition, x.offset): x
            for x in await self.find(Filter(topics=topics, include_handled=True))
        }
        missing = [i for i, w in zip(ids, wanted, strict=True) if w not in found]
        if missing:
            raise KeyError(f"no dead letter {missing[0]}")
        return [found[w] for w in wanted]

    async def replay(self, letters: Sequence[DeadLetter], actor: str) -> int:
        """Send each to its original topic with its original key; mark it replayed."""
        producer = make_producer(self.kafka, "revisit-dlq-replay")
        await producer.start()
        try:
            for letter in letters:
                headers = [("dlq.replayed_from", letter.id.encode())]
                key = letter.key.encode() if letter.key is not None else None
                await (
                    await producer.send(
                        letter.source_topic, value=letter.value, key=key, headers=headers
                    )
                )
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), timeout=5)
        await mark(self.engine, letters, "replayed", actor)
        return len(letters)

    async def purge(self, letters: Sequence[DeadLetter], actor: str) -> int:
        await mark(self.engine, letters, "purged", actor)
        return len(letters)


def _with_handled(letter: DeadLetter, action: str | None) -> DeadLetter:
    return letter if action is None else replace(letter, handled=action)
