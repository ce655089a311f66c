"""Consumer lag and dead-letter counts, sampled in the background every few seconds.

Lag of a consumer group on a partition = the partition's high-water mark - the group's
committed offset. High-water marks come from fetch responses (``consumer.highwater(tp)``) of a
group-less consumer assigned to every partition, never from ``end_offsets`` /
``offsets_for_times`` (wrong on the embedded broker, see docs/kafka-notes.md). Committed
offsets come from the admin client's ``list_consumer_group_offsets(group, partitions=...)``.
A scrape only reads the last sample: it never talks to Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.config import SERVICE_NAMES, KafkaSettings
from shared.kafka import make_admin, make_consumer
from shared.topics import ALL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OffsetSample:
    lag: dict[tuple[str, str], int] = field(default_factory=dict)  # (group, topic) -> messages
    dlq: dict[str, int] = field(default_factory=dict)  # DLQ topic -> messages in it
    ok: bool = False


def is_revisit_group(group: str) -> bool:
    """Only Revisit's own groups (``<service>.<subscription>``): labels stay bounded."""
    return any(group.startswith(f"{name}.") for name in SERVICE_NAMES)


def group_lag(
    committed: dict[TopicPartition, int],
    highwater: dict[TopicPartition, int],
    low: dict[TopicPartition, int],
) -> dict[str, int]:
    """Topic -> lag of one group, over the topics it has committed on at least once.

    A partition of such a topic with no commit yet lags by everything still on it.
    """
    consumed = {tp.topic for tp, offset in committed.items() if offset >= 0}
    out: dict[str, int] = defaultdict(int)
    for tp, hw in highwater.items():
        if tp.topic not in consumed:
            continue
        start = committed.get(tp, -1)
        if start < 0:
            start = low.get(tp, 0)
        out[tp.topic] += max(0, hw - start)
    return dict(out)


class OffsetSampler:
    def __init__(
        self,
        kafka: KafkaSettings | str,
        interval_s: float,
        client_id: str = "revisit-metrics-lag",
    ):
        self.kafka = kafka
        self.interval_s = interval_s
        self.client_id = client_id
        self.sample = OffsetSample()
        self.errors = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                try:
                    self.sample = await self.take()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.errors += 1
                    self.sample = OffsetSample(self.sample.lag, self.sample.dlq, ok=False)
                    log.warning("offset sample failed", extra={"error": type(exc).__name__})
                    await self._close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
        finally:
            await self._close()

    async def take(self) -> OffsetSample:
        consumer, admin = await self._clients()
        await consumer.topics()  # refresh metadata: topics created since the last sample
        partitions = self._assign(consumer)
        # Draining keeps the fetcher fetching, so every partition's high-water mark is fresh.
        for _ in range(50):
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            if not batch:
                break
        highwater = {tp: hw for tp in partitions if (hw := consumer.highwater(tp)) is not None}
        low = await consumer.beginning_offsets(list(partitions))
        lag: dict[tuple[str, str], int] = {}
        main = [tp for tp in partitions if not tp.topic.endswith(".dlq")]
        for group_id, _protocol in await admin.list_consumer_groups():
            if not is_revisit_group(group_id):
                continue
            offsets = await admin.list_consumer_group_offsets(group_id, partitions=main)
            committed = {tp: meta.offset for tp, meta in offsets.items()}
            for topic, n in group_lag(committed, highwater, low).items():
                lag[(group_id, topic)] = n
        dlq: dict[str, int] = defaultdict(int)
        for tp in partitions:
            if tp.topic.endswith(".dlq") and tp in highwater:
                dlq[tp.topic] += max(0, highwater[tp] - low.get(tp, 0))
        return OffsetSample(lag, dict(dlq), ok=True)

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._consumer is None or self._admin is None:
            await self._close()
            consumer = make_consumer(
                self.kafka,
                self.client_id,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
                fetch_max_wait_ms=100,
            )
            await consumer.start()
            self._consumer = consumer
            admin = make_admin(self.kafka, self.client_id)
            await admin.start()
            self._admin = admin
        return self._consumer, self._admin

    def _assign(self, consumer: AIOKafkaConsumer) -> set[TopicPartition]:
        wanted: set[TopicPartition] = set()
        for topic in ALL:
            for name in (topic.name, topic.dlq):
                for p in consumer.partitions_for_topic(name) or ():
                    wanted.add(TopicPartition(name, p))
        if wanted != consumer.assignment():
            consumer.assign(list(wanted))
        return wanted

    async def _close(self) -> None:
        consumer, admin, self._consumer, self._admin = self._consumer, self._admin, None, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), timeout=3)
        if admin is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(admin.close(), timeout=3)
