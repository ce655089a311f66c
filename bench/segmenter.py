"""Segmenter speed: the time-based sweep over 1,000,000 patients, and EHR events per second.

    python -m bench.segmenter [--patients N] [--due-fraction F] [--events N]

1. Sweep. N synthetic patients are written straight into the segmenter's tables with SQL
   (patients, and memberships whose PatientBecameEligible payloads come from the real rules):
   every patient has an upcoming need, some already have an open one (a cosmetic primary that a
   clinical need will take over from) and some an open need whose window is closing. The clock
   then moves so that about F of the patients have something due, and the real sweep
   (``services.segmenter.sweep.sweep_chunk``) runs chunk after chunk until nothing is due:
   closing, surfacing, choosing primaries and writing every PatientLeftSegment /
   PatientBecameEligible into the outbox. The baseline inserts the same number of outbox rows
   of the same size with a plain asyncpg ``executemany`` loop in the same database.

2. Events. M EHR events (visits, follow-ups, bookings, cancellations, feedback) for M/6
   patients are pre-produced on ``ehr.events.v1``; the real segmenter service (consumer,
   journeys, rules, memberships, outbox, relay) consumes them. The clock starts at the first
   committed batch and stops when the inbox holds all M. The baseline inserts M rows in batches
   of 500 with a plain asyncpg ``executemany`` loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench._harness import (
    CpuMeter,
    Infra,
    detail,
    figure,
    infrastructure,
    load_average,
    machine_line,
    prepare,
    produce_all,
    rate,
    say,
    stop_quietly,
)
from services.segmenter import handlers
from services.segmenter.app import build_spec
from services.segmenter.domain import PatientState, decide_batch
from services.segmenter.domain.params import ClinicParams
from services.segmenter.settings import SegmenterSettings
from services.segmenter.sweep import Sweeper
from shared.clock import SystemClock
from shared.config import AuthSettings, DatabaseSettings, KafkaSettings, RevisitSettings
from shared.consumer import ConsumerRunner, Subscription, attach
from shared.db import make_engine, make_sessions
from shared.events import Envelope, new_event, parse_event
from shared.events.common import (
    CodeSystem,
    EhrSource,
    Initiator,
    ServiceLine,
    ServicePerformed,
    SourceSystem,
)
from shared.events.ehr import (
    AppointmentBooked,
    AppointmentCancelled,
    ExperienceFeedbackRecorded,
    FollowUpRecommended,
    Sentiment,
    VisitCompleted,
)
from shared.inbox import Inbox
from shared.kafka import ensure_topics, make_broker, make_producer
from shared.outbox import Outbox
from shared.runtime import Runtime, freeze_startup_heap, run_service
from shared.timers import Timers
from shared.topics import EHR_EVENTS, Topic

SWEEP_TARGET_S = 30.0
EVENTS_TARGET = 2000.0
S = "segmenter"
LINES = [ServiceLine.skin_check, ServiceLine.acne, ServiceLine.psoriasis_eczema, ServiceLine.mohs]


# --- 1. the sweep -----------------------------------------------------------------------------


def _templates(now: datetime) -> dict[str, dict[str, Any]]:
    """Real PatientBecameEligible payloads (sans id) from the real rules, one per need kind."""
    ehr = _Chart("clinic-bench:tpl", now)
    events = [
        ehr.visit("v-1", now - timedelta(days=70), ServiceLine.neurotoxin),
        ehr.follow_up("f-1", now - timedelta(days=150), ServiceLine.skin_check, 150),
        ehr.cancel("a-1", now - timedelta(days=1), ServiceLine.acne, booked=False),
    ]
    state, _ = decide_batch(PatientState.new(ehr.key), events, now, ClinicParams())
    return {m.segment.value: dict(m.fields) for m in state.memberships.values()}


async def seed(infra: Infra, patients: int, now: datetime, due_fraction: float) -> None:
    """Write ``patients`` patients and their memberships with set-based SQL."""
    import json

    templates = _templates(now)
    spread = timedelta(days=100)
    horizon = now - spread * due_fraction  # surface times are spread over [horizon, +100 d]
    conn = await asyncpg.connect(infra.plain_dsn)
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute(f"TRUNCATE {S}.patients, {S}.memberships, {S}.outbox, {S}.timers")
        fu, cos, cnr = (
            json.dumps(templates[k])
            for k in (
                "follow_up_not_booked",
                "cosmetic_maintenance_due",
                "cancelled_not_rescheduled",
            )
        )
        # Every patient: an upcoming clinical follow-up surfacing somewhere in 100 days.
        await conn.execute(
            f"""
            INSERT INTO {S}.memberships (need_id, patient_key, clinic_id, segment, kind,
                service_line, source_kind, source_id, status, surface_at, expires_at, rank,
                cosmetic, fields)
            SELECT 'fu-bench-' || i, 'clinic-' || (i % 20) || ':pt-' || i, 'clinic-' || (i % 20),
                'follow_up_not_booked', 'recall', 'skin_check', 'follow_up', 'f-' || i,
                'upcoming', $1::timestamptz + (i % 100000) * ($2::interval / 100000),
                $1::timestamptz + (i % 100000) * ($2::interval / 100000) + interval '90 days',
                10, false, $3::jsonb
            FROM generate_series(1, $4) AS i
            """,
            horizon,
            spread,
            fu,
            patients,
        )
        # One in five: a cosmetic primary already open, which the follow-up will take over.
        await conn.execute(
            f"""
            INSERT INTO {S}.memberships (need_id, patient_key, clinic_id, segment, kind,
                service_line, source_kind, source_id, status, surface_at, expires_at, rank,
                cosmetic, fields, emissions, eligibility_id, opened_at)
            SELECT 'cos-bench-' || i, 'clinic-' || (i % 20) || ':pt-' || i, 'clinic-' || (i % 20),
                'cosmetic_maintenance_due', 'recall', 'neurotoxin', 'visit', 'v-' || i, 'open',
                $1::timestamptz - interval '5 days', $1::timestamptz + interval '300 days', 1270,
                true, $2::jsonb, 1, 'cos-bench-' || i, $1::timestamptz - interval '5 days'
            FROM generate_series(1, $3) AS i WHERE i % 5 = 0
            """,
            horizon,
            cos,
            patients,
        )
        # One in ten: an open cancellation whose window closes somewhere in the 100 days.
        await conn.execute(
            f"""
            INSERT INTO {S}.memberships (need_id, patient_key, clinic_id, segment, kind,
                service_line, source_kind, source_id, status, surface_at, expires_at, rank,
                cosmetic, fields, emissions, eligibility_id, opened_at)
            SELECT 'cnr-bench-' || i, 'clinic-' || (i % 20) || ':pt-' || i, 'clinic-' || (i % 20),
                'cancelled_not_rescheduled', 'reactivation', 'acne', 'appointment', 'a-' || i,
                'open', $1::timestamptz - interval '1 day',
                $1::timestamptz + ((i::bigint * 7919) % 100000) * ($2::interval / 100000),
                20, false, $3::jsonb, 1, 'cnr-bench-' || i, $1::timestamptz - interval '1 day'
            FROM generate_series(1, $4) AS i WHERE i % 10 = 1
            """,
            horizon,
            spread,
            cnr,
            patients,
        )
        await conn.execute(
            f"""
            INSERT INTO {S}.patients (patient_key, clinic_id, next_transition_at)
            SELECT patient_key, min(clinic_id), min(CASE WHEN status = 'upcoming'
                THEN least(surface_at, expires_at) ELSE expires_at END)
            FROM {S}.memberships WHERE need_id LIKE '%-bench-%' GROUP BY patient_key
            """
        )
        await conn.execute(f"VACUUM ANALYZE {S}.patients")
        await conn.execute(f"VACUUM ANALYZE {S}.memberships")
    finally:
        await conn.close()


async def run_sweep(infra: Infra, now: datetime, chunk: int, workers: int) -> dict[str, Any]:
    """The service's own sweeper, run once for everything due at ``now``."""
    engine = make_engine(DatabaseSettings(database_url=infra.database_url), application_name="b")
    sweeper = Sweeper(make_sessions(engine), SystemClock(), chunk=chunk, workers=workers)
    try:
        with CpuMeter(infra.pids) as cpu:
            started = time.perf_counter()
            result = await sweeper.run(now)
            seconds = time.perf_counter() - started
        async with engine.connect() as conn:
            sample = (
                (
                    await conn.execute(
                        text(f"SELECT body FROM {S}.outbox ORDER BY random() LIMIT 200")
                    )
                )
                .scalars()
                .all()
            )
            size = (
                await conn.execute(text(f"SELECT coalesce(avg(length(body)), 0) FROM {S}.outbox"))
            ).scalar_one()
    finally:
        await engine.dispose()
    for body in sample:
        parse_event(body)  # what the sweep wrote is a valid event
    return {
        "seconds": seconds,
        "patients": result.patients,
        "left": result.left,
        "eligible": result.eligible,
        "body_bytes": int(size),
        "checked": len(sample),
        "cpu": cpu.per_event(result.left + result.eligible),
    }


async def raw_inserts(infra: Infra, rows: int, body_bytes: int, batch: int) -> float:
    """Seconds for a plain asyncpg executemany loop to insert ``rows`` outbox-sized rows."""
    conn = await asyncpg.connect(infra.plain_dsn)
    body = b"x" * body_bytes
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw (id bigserial PRIMARY KEY, event_id uuid, "
            "topic text, message_key text, body bytea)"
        )
        await conn.execute("TRUNCATE bench_raw")
        started = time.perf_counter()
        done = 0
        while done < rows:
            n = min(batch, rows - done)
            async with conn.transaction():
                await conn.executemany(
                    "INSERT INTO bench_raw (event_id, topic, message_key, body) "
                    "VALUES (gen_random_uuid(), 'recall.eligibility.v1', $1, $2)",
                    [(f"clinic-1:pt-{done + k}", body) for k in range(n)],
                )
            done += n
        return time.perf_counter() - started
    finally:
        await conn.execute("DROP TABLE IF EXISTS bench_raw")
        await conn.close()


# --- 2. events --------------------------------------------------------------------------------


class _Chart:
    """The EHR events of one synthetic patient (synthetic ids and dates only)."""

    def __init__(self, key: str, now: datetime) -> None:
        self.key, self.clinic, self.now = key, key.partition(":")[0], now

    def _src(self, record: str, at: datetime, version: int = 1) -> EhrSource:
        return EhrSource(
            system=SourceSystem.fhir,
            record_id=record,
            source_version=str(version),
            source_updated_at=at,
        )

    def _event(self, payload: Any) -> Envelope[Any]:
        return new_event(
            payload,
            clinic_id=self.clinic,
            patient_key=self.key,
            occurred_at=payload.source.source_updated_at,
        )

    def visit(self, vid: str, at: datetime, line: ServiceLine) -> Envelope[Any]:
        return self._event(
            VisitCompleted(
                source=self._src(vid, at),
                visit_id=vid,
                completed_at=at,
                provider_id="dr-1",
                location_id="loc-1",
                services=(
                    ServicePerformed(
                        code="99213", system=CodeSystem.cpt, service_line=line, charge_cents=12000
                    ),
                ),
            )
        )

    def follow_up(self, fid: str, at: datetime, line: ServiceLine, days: int) -> Envelope[Any]:
        return self._event(
            FollowUpRecommended(
                source=self._src(fid, at),
                follow_up_id=fid,
                visit_id="v-1",
                recommended_on=at.date(),
                service_line=line,
                interval_days=days,
                provider_id="dr-1",
            )
        )

    def cancel(self, aid: str, at: datetime, line: ServiceLine, booked: bool) -> Envelope[Any]:
        start = self.now + timedelta(days=20)
        if booked:
            return self._event(
                AppointmentBooked(
                    source=self._src(aid, at),
                    appointment_id=aid,
                    start=start,
                    service_line=line,
                    provider_id="dr-1",
                    location_id="loc-1",
                )
            )
        return self._event(
            AppointmentCancelled(
                source=self._src(aid, at, 2),
                appointment_id=aid,
                start=start,
                service_line=line,
                provider_id="dr-1",
                location_id="loc-1",
                cancelled_by=Initiator.patient,
            )
        )

    def feedback(self, fid: str, at: datetime, poor: bool) -> Envelope[Any]:
        return self._event(
            ExperienceFeedbackRecorded(
                source=self._src(fid, at),
                feedback_id=fid,
                sentiment=Sentiment.poor if poor else Sentiment.good,
            )
        )


def ehr_stream(total: int, now: datetime, tag: str = "ev") -> Iterator[tuple[bytes, bytes]]:
    """Six events per patient, interleaved across patients as a practice's feed would be."""
    patients = max(1, total // 6)
    charts = []
    for i in range(patients):
        c = _Chart(f"clinic-{i % 20}:pt-{tag}-{i:07d}", now)
        line = LINES[i % len(LINES)]
        day = timedelta(days=1)
        charts.append(
            [
                c.visit("v-1", now - 100 * day, line),
                c.follow_up("f-1", now - 100 * day, line, 90),
                c.cancel("a-1", now - 5 * day, line, booked=True),
                c.cancel("a-1", now - 1 * day, line, booked=False),
                c.visit("v-2", now - 80 * day, ServiceLine.neurotoxin),
                c.feedback("fb-1", now - 1 * day, poor=i % 10 == 0),
            ]
        )
    sent = 0
    for step in range(6):
        for chart in charts:
            if sent >= total:
                return
            event = chart[step]
            yield event.patient_key.encode(), event.to_bytes()
            sent += 1


async def _until_consumed(
    conn: asyncpg.Connection, consumer: str, total: int, limit: float
) -> tuple[int, float, bool]:
    """(consumed, seconds from the first committed batch to the last, finished) by the inbox."""
    sql = f"SELECT count(*) FROM {S}.inbox WHERE consumer = $1"
    first = last = None
    done = 0
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        done = await conn.fetchval(sql, consumer)
        if done and first is None:
            first = time.perf_counter()
        if done >= total:
            last = time.perf_counter()
            break
        await asyncio.sleep(0.05)
    end = last or time.perf_counter()
    return done, end - (first or end), last is not None


def _settings(infra: Infra) -> RevisitSettings:
    return RevisitSettings(
        db=DatabaseSettings(database_url=infra.database_url),
        kafka=KafkaSettings(kafka_bootstrap_servers=infra.bootstrap),
        auth=AuthSettings(revisit_jwt_secret="b" * 40),
    )


def subscribed_segmenter(
    infra: Infra, topic: Topic, group: str, client_id: str
) -> tuple[KafkaBroker, AIOKafkaProducer, AsyncEngine]:
    """The segmenter's real subscription, on ``topic`` as consumer ``segmenter.<group>``; not
    started. The caller starts the producer and the broker, and stops them and the engine."""
    settings = _settings(infra)
    engine = make_engine(settings.db, application_name=client_id)
    runtime = Runtime(
        service="segmenter",
        settings=settings,
        engine=engine,
        sessions=make_sessions(engine),
        clock=SystemClock(),
        outbox=Outbox(S),
        inbox=Inbox(S),
        timers=Timers(S),
    )
    own = SegmenterSettings()
    handlers.tune_gc(own)  # as the service does at start-up
    (sub,) = build_spec(own).subscriptions(runtime)
    sub = Subscription((topic,), group, sub.handler, sub.event_types)
    producer = make_producer(settings.kafka, client_id)
    broker = make_broker(settings.kafka, client_id)
    runner = ConsumerRunner("segmenter", runtime.sessions, runtime.inbox, producer)
    attach(broker, runner, sub, settings.kafka)
    return broker, producer, engine


async def run_pipeline(infra: Infra, total: int, limit: float) -> dict[str, Any]:
    """The segmenter's real subscription (FastStream batch consumer, runner with inbox, journey
    handler, outbox) on a topic of its own, without the relay: ehr events in, outbox rows out."""
    topic = Topic(f"bench.ehr.{uuid.uuid4().hex[:8]}.v1", "bench input")
    await ensure_topics(infra.bootstrap, 6, names=[topic.name, topic.dlq])
    messages = list(ehr_stream(total, datetime.now(UTC), "pl"))
    total = len(messages)
    await produce_all(infra.bootstrap, topic.name, messages)
    broker, producer, engine = subscribed_segmenter(infra, topic, "bench", "bench-segmenter")
    conn = await asyncpg.connect(infra.plain_dsn)
    count_outbox = f"SELECT count(*) FROM {S}.outbox"
    try:
        outbox_before = await conn.fetchval(count_outbox)
        await producer.start()
        with CpuMeter(infra.pids) as cpu:
            await broker.start()
            freeze_startup_heap()  # as run_service does once the consumers are started
            done, seconds, finished = await _until_consumed(conn, "segmenter.bench", total, limit)
        outbox = await conn.fetchval(count_outbox) - outbox_before
    finally:
        await stop_quietly(broker, producer)
        await conn.close()
        await engine.dispose()
    return {
        "count": done,
        "seconds": seconds,
        "finished": finished,
        "outbox": outbox,
        "total": total,
        "cpu": cpu.per_event(done),
    }


async def run_service_events(infra: Infra, total: int, limit: float) -> dict[str, Any]:
    """The whole service (``run_service``): the same, plus the relay publishing the outbox."""
    messages = list(ehr_stream(total, datetime.now(UTC), "sv"))
    total = len(messages)
    await produce_all(infra.bootstrap, EHR_EVENTS.name, messages)
    conn = await asyncpg.connect(infra.plain_dsn)
    try:
        with CpuMeter(infra.pids) as cpu:
            async with run_service(build_spec(SegmenterSettings()), _settings(infra)):
                done, seconds, finished = await _until_consumed(
                    conn, "segmenter.journeys", total, limit
                )
    finally:
        await conn.close()
    return {
        "count": done,
        "seconds": seconds,
        "finished": finished,
        "total": total,
        "cpu": cpu.per_event(done),
    }


# --- main -------------------------------------------------------------------------------------


async def bench(infra: Infra, args: argparse.Namespace) -> bool:
    t = time.perf_counter()
    await prepare(infra, partitions=6)
    detail(f"migrations and topics ready in {time.perf_counter() - t:.1f}s")
    now = datetime.combine(date.today(), datetime.min.time(), tzinfo=UTC)

    ok = True
    if args.only != "events":
        ok &= await bench_sweep(infra, args, now)
    if args.only != "sweep":
        ok &= await bench_events(infra, args)
    if not ok:
        say("BELOW TARGET")
    return ok


async def bench_sweep(infra: Infra, args: argparse.Namespace, now: datetime) -> bool:
    t = time.perf_counter()
    await seed(infra, args.patients, now, args.due_fraction)
    detail(f"seeded {args.patients} patients with set-based SQL in {time.perf_counter() - t:.1f}s")
    sweep = await run_sweep(infra, now, args.chunk, args.workers)
    events_out = sweep["left"] + sweep["eligible"]
    detail(
        f"sweep: {sweep['patients']} due patients ({args.workers} workers, chunks of "
        f"{args.chunk}); "
        f"{sweep['left']} PatientLeftSegment + {sweep['eligible']} PatientBecameEligible "
        f"({sweep['body_bytes']} bytes each on average) in {sweep['seconds']:.2f}s; "
        f"{sweep['checked']} sampled events parse; CPU per event: {sweep['cpu']}; "
        f"load {load_average()}"
    )
    raw_s = await raw_inserts(infra, events_out, sweep["body_bytes"], 5000)
    say(figure("segmenter_sweep", sweep["seconds"], "s", f"target <= {SWEEP_TARGET_S:.0f}"))
    say(
        figure(
            "segmenter_sweep_raw_insert",
            raw_s,
            "s",
            f"baseline: asyncpg executemany of the same {events_out} outbox rows",
        )
    )
    say(
        figure(
            "segmenter_sweep_ratio",
            sweep["seconds"] / raw_s if raw_s else 0.0,
            "",
            "sweep / raw insert",
        )
    )

    return bool(sweep["seconds"] <= SWEEP_TARGET_S)


async def bench_events(infra: Infra, args: argparse.Namespace) -> bool:
    ev = await run_pipeline(infra, args.events, args.timeout)
    ev_rate = rate(ev["count"], ev["seconds"])
    detail(
        f"events: {ev['count']}/{ev['total']} from the topic to the outbox in "
        f"{ev['seconds']:.2f}s after the first batch ({ev['outbox']} outbox rows); CPU per event: "
        f"{ev['cpu']}; load {load_average()}"
        + ("" if ev["finished"] else f"; TIMED OUT after {args.timeout:.0f}s")
    )
    raw_rows_s = await raw_inserts(infra, ev["total"], 300, 500)
    raw_rate = rate(ev["total"], raw_rows_s)
    # The target is the service's, deployed as the Helm chart runs it (2 replicas, one group);
    # one process is reported beside it, against the same target when it runs alone.
    alone = args.replicas <= 1
    target_note = f"target >= {EVENTS_TARGET:.0f}"
    say(
        figure(
            "segmenter_events",
            ev_rate,
            "events/s",
            target_note if alone else f"one process; {target_note} is for {args.replicas} replicas",
        )
    )
    say(
        figure(
            "segmenter_events_raw_insert",
            raw_rate,
            "rows/s",
            "baseline: asyncpg executemany, batches of 500",
        )
    )
    say(
        figure(
            "segmenter_events_ratio",
            ev_rate / raw_rate if raw_rate else 0.0,
            "",
            "pipeline / raw insert",
        )
    )
    met = ev_rate >= EVENTS_TARGET and ev["finished"]
    if not alone:
        from bench.segmenter_replicas import run_replicas

        rp = await run_replicas(infra, args.events, args.timeout, args.replicas)
        rp_rate = rate(rp["count"], rp["seconds"])
        detail(
            f"events with {args.replicas} segmenter processes in one consumer group: "
            f"{rp['count']}/{rp['total']} in {rp['seconds']:.2f}s ({rp['outbox']} outbox rows); "
            f"CPU per event: {rp['cpu']}; load {load_average()}"
            + ("" if rp["finished"] else f"; TIMED OUT after {args.timeout:.0f}s")
        )
        say(
            figure(
                f"segmenter_events_{args.replicas}_replicas",
                rp_rate,
                "events/s",
                f"target >= {EVENTS_TARGET:.0f}",
            )
        )
        say(
            figure(
                f"segmenter_events_{args.replicas}_replicas_ratio",
                rp_rate / raw_rate if raw_rate else 0.0,
                "",
                "pipeline / raw insert",
            )
        )
        met = rp_rate >= EVENTS_TARGET and rp["finished"]
    if args.with_service:
        sv = await run_service_events(infra, args.events, args.timeout)
        sv_rate = rate(sv["count"], sv["seconds"])
        detail(
            f"whole service (relay publishing too): {sv['count']}/{sv['total']} in "
            f"{sv['seconds']:.2f}s = {sv_rate:.0f} events/s; CPU per event: {sv['cpu']}; "
            f"load {load_average()}"
        )
    return bool(met)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.segmenter", description=__doc__)
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument(
        "--due-fraction",
        type=float,
        default=0.3,
        help="share of the patients with a follow-up coming due",
    )
    parser.add_argument(
        "--chunk", type=int, default=SegmenterSettings().revisit_segmenter_sweep_chunk
    )
    parser.add_argument(
        "--workers", type=int, default=SegmenterSettings().revisit_segmenter_sweep_workers
    )
    parser.add_argument("--events", type=int, default=60_000, help="a multiple of 6")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--only", choices=("sweep", "events"), help="run one half only")
    parser.add_argument(
        "--replicas",
        type=int,
        default=2,
        help="also consume the events with this many segmenter processes (1: skip)",
    )
    parser.add_argument(
        "--with-service",
        action="store_true",
        help="also run the whole service (relay included) on the same number of events",
    )
    args = parser.parse_args(argv)
    if args.patients < 1 or args.events < 6 or args.events % 6 or not 0 <= args.due_fraction <= 1:
        parser.error("--patients >= 1, --events a multiple of 6, 0 <= --due-fraction <= 1")
    say(machine_line("segmenter"))
    started = time.perf_counter()
    try:
        with infrastructure("revisit-bench-segmenter-") as infra:
            asyncio.run(bench(infra, args))
    except KeyboardInterrupt:
        print("# interrupted; everything started was stopped", file=sys.stderr)
        return 130
    detail(f"wall time {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
