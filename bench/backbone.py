"""Backbone throughput: topic -> batch consumer -> one transaction (inbox + state + outbox) ->
relay -> next topic, beside a raw aiokafka consume -> transform -> produce loop.

    python -m bench.backbone [--events N] [--patients P]

Both paths read the same N pre-produced ``AppointmentCancelled`` envelopes (6 partitions,
keyed by patient_key). The clock starts when the path receives its first input batch and stops
when a separate consumer has seen the N-th output record on the output topic, so group joins
are left out of both figures and everything between the two topics is in them. See
bench/README.md for what each line means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bench._harness import (
    CpuMeter,
    Infra,
    Stopwatch,
    TopicCounter,
    delete_topics,
    detail,
    figure,
    infrastructure,
    load_average,
    machine_line,
    prepare,
    produce_all,
    rate,
    run_async,
    say,
    stop_quietly,
)
from shared.config import DatabaseSettings, KafkaSettings, TelemetrySettings
from shared.consumer import BatchHandler, ConsumerRunner, Delivery, Subscription, attach
from shared.db import make_engine, make_sessions
from shared.events import new_event
from shared.events.common import (
    EhrSource,
    Initiator,
    Segment,
    SegmentKind,
    ServiceLine,
    SourceRecord,
    SourceRecordKind,
    SourceSystem,
)
from shared.events.ehr import AppointmentCancelled, CancellationReason
from shared.events.eligibility import PatientBecameEligible
from shared.inbox import Inbox
from shared.kafka import make_broker, make_producer
from shared.outbox import Outbox, OutboxRelay
from shared.runtime import freeze_startup_heap
from shared.telemetry import setup_tracing
from shared.topics import EHR_EVENTS, ELIGIBILITY

TARGET = 3000.0
SCHEMA = "segmenter"
STATE_TABLE = f"{SCHEMA}.bench_backbone_state"
RUN_HEADER = "bench.run"
SERVICE_LINES = [ServiceLine.skin_check, ServiceLine.acne, ServiceLine.neurotoxin, ServiceLine.mohs]
REASONS = [CancellationReason.patient_request, CancellationReason.illness, CancellationReason.cost]


# --- input ------------------------------------------------------------------------------------


def input_events(n: int, patients: int, run_id: uuid.UUID) -> Iterator[tuple[bytes, bytes]]:
    """``n`` valid AppointmentCancelled envelopes as (key, value), spread over ``patients``.

    Every event carries ``run_id`` as its correlation id, so the pipeline's outputs for this
    run can be told apart from anything else on a shared topic.
    """
    base = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    for i in range(n):
        clinic = f"clinic-{i % 3 + 1}"
        patient_key = f"{clinic}:pt-{i % patients:06d}"
        start = base + timedelta(days=i % 60, minutes=15 * (i % 32))
        payload = AppointmentCancelled(
            source=EhrSource(
                system=SourceSystem.fhir,
                record_id=f"Appointment/appt-{i:08d}",
                source_version=str(1 + i % 4),
                source_updated_at=start - timedelta(days=2),
            ),
            appointment_id=f"appt-{i:08d}",
            start=start,
            service_line=SERVICE_LINES[i % len(SERVICE_LINES)],
            provider_id=f"prov-{i % 17:03d}",
            location_id=f"loc-{i % 5}",
            duration_minutes=30,
            cancelled_by=Initiator.patient,
            reason_code=REASONS[i % len(REASONS)],
        )
        envelope = new_event(
            payload,
            clinic_id=clinic,
            patient_key=patient_key,
            occurred_at=start - timedelta(days=1),
            correlation_id=run_id,
        )
        yield patient_key.encode(), envelope.to_bytes()


# --- the pipeline under test --------------------------------------------------------------------


class TimedRunner(ConsumerRunner):
    """The real runner; only notes when the first batch arrives (the clock's start)."""

    def __init__(self, *args: Any, watch: Stopwatch, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.watch = watch
        self.batches = 0
        self.records = 0

    async def handle_records(self, sub: Subscription, records: Sequence[ConsumerRecord]) -> None:
        self.watch.mark("pipeline_first_batch", once=True)
        self.batches += 1
        self.records += len(records)
        await super().handle_records(sub, records)


def make_handler(outbox: Outbox, run_id: uuid.UUID) -> BatchHandler:
    upsert = text(
        f"INSERT INTO {STATE_TABLE} AS s (patient_key, last_event_id, last_type, events)"
        " VALUES (:patient_key, :event_id, :type, 1)"
        " ON CONFLICT (patient_key) DO UPDATE SET last_event_id = excluded.last_event_id,"
        " last_type = excluded.last_type, events = s.events + 1, updated_at = now()"
    )
    marker = str(run_id)

    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        # State: one row per event, one executemany for the batch.
        await session.execute(
            upsert,
            [
                {
                    "patient_key": d.envelope.patient_key,
                    "event_id": d.envelope.event_id,
                    "type": d.envelope.type,
                }
                for d in deliveries
            ],
        )
        # Outgoing: one PatientBecameEligible per cancellation, each with the trace headers of
        # the event that caused it, staged for the whole batch at once.
        staged = []
        for d in deliveries:
            event = d.envelope
            cancelled: AppointmentCancelled = event.payload
            out = event.caused(
                PatientBecameEligible(
                    eligibility_id=f"cnr-{cancelled.appointment_id}",
                    segment=Segment.cancelled_not_rescheduled,
                    kind=SegmentKind.reactivation,
                    service_line=cancelled.service_line,
                    reason="appointment cancelled and not rescheduled",
                    source_record=SourceRecord(
                        kind=SourceRecordKind.appointment, id=cancelled.appointment_id
                    ),
                    due_at=event.occurred_at + timedelta(hours=2),
                    needs_marketing_consent=cancelled.service_line.is_cosmetic,
                    provider_id=cancelled.provider_id,
                    location_id=cancelled.location_id,
                )
            )
            headers = d.trace_headers
            if event.correlation_id == run_id:
                headers = {**headers, RUN_HEADER: marker}
            staged.append((out, headers))
        await outbox.stage_batch(session, staged)

    return handle


async def run_pipeline(infra: Infra, n: int, run_id: uuid.UUID, limit: float) -> dict[str, Any]:
    watch = Stopwatch()
    kafka = KafkaSettings(kafka_bootstrap_servers=infra.bootstrap)
    db = DatabaseSettings(database_url=infra.database_url)
    engine = make_engine(db, application_name="bench-backbone")
    sessions = make_sessions(engine)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} (patient_key text PRIMARY KEY,"
                " last_event_id uuid NOT NULL, last_type text NOT NULL, events bigint NOT NULL,"
                " updated_at timestamptz NOT NULL DEFAULT now())"
            )
        )
    producer = make_producer(kafka, "bench-segmenter")
    broker = make_broker(kafka, "bench-segmenter")
    counter = TopicCounter(
        infra.bootstrap, ELIGIBILITY.name, n, header=(RUN_HEADER, str(run_id).encode())
    )
    stop = asyncio.Event()
    relay_task: asyncio.Task[None] | None = None
    outbox = Outbox(SCHEMA)
    relay = OutboxRelay(engine, SCHEMA, producer, listen_dsn=infra.plain_dsn)
    runner = TimedRunner("segmenter", sessions, Inbox(SCHEMA), producer, watch=watch)
    # A fresh consumer name per run: its own group and its own inbox key.
    sub = Subscription((EHR_EVENTS,), f"bench-{run_id.hex[:12]}", make_handler(outbox, run_id))
    attach(broker, runner, sub, kafka)
    finished = False
    cpu = CpuMeter(infra.pids)
    try:
        await producer.start()
        await counter.start()
        relay_task = asyncio.create_task(relay.run(stop), name="bench-relay")
        # As run_service does once a service has started.
        freeze_startup_heap()
        watch.mark("pipeline_start")
        with cpu:
            await broker.start()
            finished = await counter.wait(limit)
        watch.mark("pipeline_end")
    finally:
        await stop_quietly(broker, limit=6)
        stop.set()
        if relay_task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(relay_task, timeout=3)
        await stop_quietly(counter, producer)
        with contextlib.suppress(Exception):
            async with engine.begin() as conn:
                await conn.execute(text(f"DROP TABLE IF EXISTS {STATE_TABLE}"))
                await conn.execute(
                    text(f"DELETE FROM {SCHEMA}.inbox WHERE consumer = :c"),
                    {"c": f"segmenter.{sub.name}"},
                )
                # Left only if the run timed out: never publish them later.
                await conn.execute(
                    text(f"DELETE FROM {SCHEMA}.outbox WHERE headers ->> :h = :run"),
                    {"h": RUN_HEADER, "run": str(run_id)},
                )
        await engine.dispose()
    start = watch.marks.get("pipeline_first_batch", watch.marks["pipeline_start"])
    end = counter.finished_at if finished and counter.finished_at else watch.marks["pipeline_end"]
    return {
        "finished": finished,
        "count": counter.count,
        "seconds": end - start,
        "join_seconds": start - watch.marks["pipeline_start"],
        "total_seconds": end - watch.marks["pipeline_start"],
        "batches": runner.batches,
        "records": runner.records,
        "published": relay.published,
        "cpu": cpu.per_event(counter.count, end - start),
    }


# --- the raw baseline ---------------------------------------------------------------------------


async def run_raw(
    infra: Infra, n: int, in_topic: str, out_topic: str, group: str, limit: float
) -> dict[str, Any]:
    """aiokafka only: getmany -> json.loads/dumps -> send each -> await acks -> commit."""
    watch = Stopwatch()
    kafka = KafkaSettings(kafka_bootstrap_servers=infra.bootstrap)
    consumer = AIOKafkaConsumer(
        in_topic,
        bootstrap_servers=infra.bootstrap,
        client_id="bench-raw",
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=kafka.kafka_max_poll_records,
        session_timeout_ms=kafka.kafka_session_timeout_ms,
        heartbeat_interval_ms=kafka.kafka_heartbeat_interval_ms,
    )
    producer = make_producer(kafka, "bench-raw")
    counter = TopicCounter(infra.bootstrap, out_topic, n)
    consumed = 0

    async def loop() -> None:
        nonlocal consumed
        while consumed < n:
            batches = await consumer.getmany(
                timeout_ms=50, max_records=kafka.kafka_max_poll_records
            )
            if not batches:
                continue
            watch.mark("raw_first_batch", once=True)
            futures = []
            for records in batches.values():
                for record in records:
                    body = json.dumps(json.loads(record.value or b"")).encode()
                    futures.append(
                        await producer.send(
                            out_topic, value=body, key=record.key, headers=list(record.headers)
                        )
                    )
                    consumed += 1
            await asyncio.gather(*futures)
            await consumer.commit()

    task: asyncio.Task[None] | None = None
    finished = False
    cpu = CpuMeter(infra.pids)
    try:
        await producer.start()
        await counter.start()
        watch.mark("raw_start")
        with cpu:
            await consumer.start()
            task = asyncio.create_task(loop(), name="bench-raw")
            finished = await counter.wait(limit)
        watch.mark("raw_end")
        if task.done():
            task.result()
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await stop_quietly(consumer, counter, producer)
    start = watch.marks.get("raw_first_batch", watch.marks["raw_start"])
    end = counter.finished_at if finished and counter.finished_at else watch.marks["raw_end"]
    return {
        "finished": finished,
        "count": counter.count,
        "seconds": end - start,
        "join_seconds": start - watch.marks["raw_start"],
        "total_seconds": end - watch.marks["raw_start"],
        "cpu": cpu.per_event(counter.count, end - start),
    }


# --- main -------------------------------------------------------------------------------------


async def bench(
    infra: Infra, n: int, patients: int, limit: float, profile: str | None = None
) -> bool:
    run_id = uuid.uuid4()
    raw_in, raw_out = f"bench.raw.in.{run_id.hex[:8]}", f"bench.raw.out.{run_id.hex[:8]}"
    t = time.perf_counter()
    await prepare(infra, topics=[raw_in, raw_out], partitions=6)
    detail(f"migrations and topics ready in {time.perf_counter() - t:.1f}s")

    t = time.perf_counter()
    messages = list(input_events(n, patients, run_id))
    sizes = [len(v) for _, v in messages]
    detail(
        f"built {n} AppointmentCancelled envelopes for {min(n, patients)} patients "
        f"({min(sizes)}-{max(sizes)} bytes, mean {sum(sizes) / len(sizes):.0f}) "
        f"in {time.perf_counter() - t:.1f}s"
    )
    t = time.perf_counter()
    await produce_all(infra.bootstrap, EHR_EVENTS.name, messages)
    await produce_all(infra.bootstrap, raw_in, messages)
    detail(f"pre-produced 2 x {n} messages in {time.perf_counter() - t:.1f}s")
    del messages

    try:
        raw = await run_raw(infra, n, raw_in, raw_out, f"bench-raw-{run_id.hex[:8]}", limit)
    finally:
        if not infra.embedded:
            await delete_topics(infra.bootstrap, [raw_in, raw_out])
    raw_rate = rate(raw["count"], raw["seconds"])
    detail(
        f"raw: {raw['count']}/{n} out in {raw['seconds']:.2f}s after the first batch "
        f"(group join {raw['join_seconds']:.1f}s); cpu per event: {raw['cpu']}; "
        f"load average {load_average()}"
        + ("" if raw["finished"] else f"; TIMED OUT after {limit:.0f}s")
    )

    setup_tracing("segmenter", TelemetrySettings(otel_exporter_otlp_endpoint=""))
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    pipe = await run_pipeline(infra, n, run_id, limit)
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
        detail(f"pipeline profile written to {profile} (python -m pstats {profile})")
    pipe_rate = rate(pipe["count"], pipe["seconds"])
    detail(
        f"pipeline: {pipe['count']}/{n} out in {pipe['seconds']:.2f}s after the first batch "
        f"(group join {pipe['join_seconds']:.1f}s; {pipe['batches']} batches, "
        f"mean {pipe['records'] / max(pipe['batches'], 1):.0f} records; "
        f"relay published {pipe['published']}; including the join: "
        f"{rate(pipe['count'], pipe['total_seconds']):.0f} events/s)"
        + ("" if pipe["finished"] else f"; TIMED OUT after {limit:.0f}s")
    )
    detail(f"pipeline cpu per event: {pipe['cpu']}; load average {load_average()}")

    below = pipe_rate < TARGET or not pipe["finished"]
    say(figure("backbone", pipe_rate, "events/s", f"target >= {TARGET:.0f}"))
    say(figure("backbone_raw_aiokafka", raw_rate, "events/s", "baseline, same broker"))
    say(figure("backbone_ratio", pipe_rate / raw_rate if raw_rate else 0.0, "", "pipeline / raw"))
    if below:
        say(f"BELOW TARGET: backbone {pipe_rate:.0f} events/s < {TARGET:.0f}")
    return not below


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backbone", description=__doc__)
    parser.add_argument("--events", type=int, default=50_000, help="events per path")
    parser.add_argument("--patients", type=int, default=5_000, help="distinct patient keys")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="give up on a path after this many seconds"
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="write a cProfile of the pipeline phase to FILE"
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.patients < 1:
        parser.error("--events and --patients must be positive")
    say(machine_line("backbone"))
    started = time.perf_counter()
    try:
        with infrastructure("revisit-bench-backbone-") as infra:
            where = "embedded" if infra.embedded else "external (DATABASE_URL/KAFKA_BOOTSTRAP)"
            detail(f"servers: {where}; events={args.events} patients={args.patients}")
            run_async(bench(infra, args.events, args.patients, args.timeout, args.profile))
    except KeyboardInterrupt:
        print("# interrupted; everything started was stopped", file=sys.stderr)
        return 130
    detail(f"wall time {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
