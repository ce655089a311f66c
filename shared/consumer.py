"""Consume a topic in batches: parse, dead-letter the bad, one transaction for the good.

For each batch the runner
1. parses every record into a typed envelope; a record that cannot be parsed goes to the
   topic's DLQ with the original bytes and the error, and the rest carry on;
2. opens ONE transaction: claims the batch in the inbox (redeliveries drop out), calls the
   handler (state + staged outgoing events), commits;
3. if that transaction fails for a transient reason (``shared.faults``: the database restarting
   or unreachable, a lock or statement timeout, a deadlock, a pool with no connection, the
   broker away), waits a capped, jittered backoff that grows while the failures last, and
   raises so the batch is redelivered: a valid event is never dead-lettered for the weather;
   if it fails for any other reason, it replays the batch one event at a time so that only the
   event that breaks the handler is dead-lettered;
4. only then are offsets committed (by FastStream's NACK_ON_ERROR policy).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from faststream import AckPolicy, Context
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.message import StreamMessage
from opentelemetry import trace
from opentelemetry.context import Context as TraceContext
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import pipeline_metrics as pm
from shared.config import KafkaSettings
from shared.events.envelope import Envelope, EventError, parse_event
from shared.faults import Backoff, is_transient
from shared.faults import HandlerFailed as HandlerFailed  # its home before shared.faults
from shared.inbox import Inbox
from shared.telemetry import context_from_kafka_headers
from shared.topics import Topic

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("revisit.consumer")
_propagator = TraceContextTextMapPropagator()


@dataclass(frozen=True)
class Delivery:
    """One consumed event with where it came from and its trace context."""

    envelope: Envelope[Any]
    topic: str
    partition: int
    offset: int
    trace_context: TraceContext
    # W3C headers of a span started for this event: stage caused events with these.
    trace_headers: dict[str, str]

    def activate(self) -> AbstractContextManager[Span]:
        """Make this event's trace current (for handlers that call out while handling it)."""
        return _tracer.start_as_current_span(
            f"handle {self.envelope.type}",
            context=TraceContextTextMapPropagator().extract(self.trace_headers),
        )


BatchHandler = Callable[[AsyncSession, Sequence[Delivery]], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    topics: tuple[Topic, ...]
    name: str  # the consumer's name: its group is "<service>.<name>", its inbox key too
    handler: BatchHandler
    event_types: frozenset[str] | None = None  # None: every type on the topics

    def topic_of(self, name: str) -> Topic:
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise KeyError(name)


class ConsumerRunner:
    def __init__(
        self,
        service: str,
        sessions: async_sessionmaker[AsyncSession],
        inbox: Inbox,
        producer: AIOKafkaProducer,
    ) -> None:
        self.service = service
        self.sessions = sessions
        self.inbox = inbox
        self.producer = producer
        self.backoff = Backoff(base=0.5, cap=30.0)
        # Consecutive transient failures per consumer: the wait grows while they last.
        self._streak: dict[str, int] = {}

    async def handle_records(self, sub: Subscription, records: Sequence[ConsumerRecord]) -> None:
        started = time.perf_counter()
        deliveries: list[Delivery] = []
        malformed: list[tuple[ConsumerRecord, str]] = []
        for record in records:
            try:
                envelope = parse_event(record.value or b"")
                if record.key is not None and record.key.decode(errors="replace") != (
                    envelope.patient_key
                ):
                    raise EventError("the message key is not the event's patient_key")
            except EventError as exc:
                malformed.append((record, str(exc)))
                continue
            if sub.event_types is not None and envelope.type not in sub.event_types:
                continue
            deliveries.append(self._delivery(record, envelope))
        if deliveries:
            try:
                await self._commit(sub, deliveries)
            except Exception as exc:
                if is_transient(exc):
                    await self._pause_for_redelivery(sub, exc)
                    raise
                log.warning(
                    "batch failed, replaying one by one",
                    extra={"service": self.service, "error": type(exc).__name__},
                )
                for delivery in deliveries:
                    try:
                        await self._commit_one(sub, delivery)
                    except Exception as again:
                        if is_transient(again):
                            await self._pause_for_redelivery(sub, again)
                        raise
            self._streak.pop(sub.name, None)
        # Dead-lettered only once the good events are committed: a batch that fails transiently
        # is redelivered whole, and sending these first would dead-letter them twice.
        for record, detail in malformed:
            await self.dead_letter(sub, record, "malformed", detail)
        pm.BATCH_SECONDS.labels(self.service, sub.name).observe(time.perf_counter() - started)

    async def _pause_for_redelivery(self, sub: Subscription, exc: BaseException) -> None:
        """Wait before the batch comes back, longer while the failures last (not a tight loop
        against a database that is restarting)."""
        streak = self._streak.get(sub.name, 0)
        self._streak[sub.name] = streak + 1
        pm.TRANSIENT_FAILURES.labels(self.service, sub.name).inc()
        delay = self.backoff.delay(streak)
        log.warning(
            "transient failure, batch will be redelivered",
            extra={
                "service": self.service,
                "consumer": sub.name,
                "error": type(exc).__name__,
                "retry_in_s": round(delay, 2),
            },
        )
        await asyncio.sleep(delay)

    def _delivery(self, record: ConsumerRecord, envelope: Envelope[Any]) -> Delivery:
        parent = context_from_kafka_headers(record.headers)
        # Started and ended without becoming current (no context attach/detach per record);
        # its context is injected explicitly, so caused events still name it as their parent.
        span = _tracer.start_span(
            f"consume {envelope.type}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.destination.name": record.topic,
                "revisit.event_type": envelope.type,
            },
        )
        headers: dict[str, str] = {}
        _propagator.inject(headers, context=trace.set_span_in_context(span, parent))
        span.end()
        return Delivery(envelope, record.topic, record.partition, record.offset, parent, headers)

    async def _commit(self, sub: Subscription, deliveries: Sequence[Delivery]) -> None:
        consumer = f"{self.service}.{sub.name}"
        async with self.sessions() as session, session.begin():
            fresh = await self.inbox.claim(
                session, consumer, [d.envelope.event_id for d in deliveries]
            )
            # A batch can hold one event twice (a relay that republished): handle it once.
            new: list[Delivery] = []
            for d in deliveries:
                if d.envelope.event_id in fresh:
                    fresh.discard(d.envelope.event_id)
                    new.append(d)
            if new:
                await sub.handler(session, new)
        skipped = len(deliveries) - len(new)
        if skipped:
            pm.EVENTS_DUPLICATE.labels(self.service, sub.name).inc(skipped)
        # One increment per (topic, type), not per event: a labelled inc costs microseconds.
        for (topic, event_type), count in Counter((d.topic, d.envelope.type) for d in new).items():
            pm.EVENTS_CONSUMED.labels(self.service, topic, event_type).inc(count)

    async def _commit_one(self, sub: Subscription, delivery: Delivery) -> None:
        try:
            await self._commit(sub, [delivery])
        except Exception as exc:
            if is_transient(exc):
                raise
            detail = str(exc) if isinstance(exc, HandlerFailed | EventError) else ""
            await self.dead_letter_delivery(sub, delivery, type(exc).__name__, detail)

    async def dead_letter_delivery(
        self, sub: Subscription, delivery: Delivery, reason: str, detail: str
    ) -> None:
        log.error(
            "event dead-lettered",
            extra={
                "service": self.service,
                "topic": delivery.topic,
                "event_id": str(delivery.envelope.event_id),
                "event_type": delivery.envelope.type,
                "reason": reason,
            },
        )
        await self._send_dlq(
            sub.topic_of(delivery.topic),
            delivery.envelope.to_bytes(),
            delivery.envelope.patient_key.encode(),
            {"topic": delivery.topic, "partition": delivery.partition, "offset": delivery.offset},
            reason,
            detail,
        )

    async def dead_letter(
        self, sub: Subscription, record: ConsumerRecord, reason: str, detail: str
    ) -> None:
        log.error(
            "message dead-lettered",
            extra={
                "service": self.service,
                "topic": record.topic,
                "offset": record.offset,
                "reason": reason,
                "detail": detail,
            },
        )
        await self._send_dlq(
            sub.topic_of(record.topic),
            record.value or b"",
            record.key,
            {"topic": record.topic, "partition": record.partition, "offset": record.offset},
            reason,
            detail,
        )

    async def _send_dlq(
        self,
        topic: Topic,
        value: bytes,
        key: bytes | None,
        origin: dict[str, Any],
        reason: str,
        detail: str,
    ) -> None:
        headers = [
            ("dlq.reason", reason.encode()),
            ("dlq.error", detail[:2000].encode()),
            ("dlq.consumer", self.service.encode()),
            ("dlq.source.topic", str(origin["topic"]).encode()),
            ("dlq.source.partition", str(origin["partition"]).encode()),
            ("dlq.source.offset", str(origin["offset"]).encode()),
        ]
        # Awaited to the broker's acknowledgement: the offset is not committed before the
        # dead letter is safely stored, so nothing is lost.
        future = await self.producer.send(topic.dlq, value=value, key=key, headers=headers)
        await future
        pm.EVENTS_DEAD_LETTERED.labels(self.service, topic.name, reason).inc()


async def _undecoded_batch(message: StreamMessage[Any]) -> Any:
    """FastStream decoder that leaves the records' bytes alone.

    The runner parses every record itself (and dead-letters what does not parse); FastStream's
    default decoder would build a message object and run json.loads per record for nothing.
    """
    return message.body


def attach(
    broker: KafkaBroker,
    runner: ConsumerRunner,
    sub: Subscription,
    settings: KafkaSettings,
) -> None:
    """Register ``sub`` as a FastStream batch subscriber of ``broker``."""

    async def on_batch(body: list[Any], message: KafkaMessage = Context("message")) -> None:
        raw = message.raw_message
        records = list(raw) if isinstance(raw, tuple | list) else [raw]
        await runner.handle_records(sub, records)

    broker.subscriber(
        *(topic.name for topic in sub.topics),
        batch=True,
        decoder=_undecoded_batch,
        max_records=settings.kafka_max_poll_records,
        batch_timeout_ms=50,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        group_id=f"{runner.service}.{sub.name}",
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )(on_batch)
