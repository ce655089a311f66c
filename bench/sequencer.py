"""Sequencer step throughput: due step timers -> the real timer poller and handler -> SendStep in
the outbox, beside a raw asyncpg loop that writes the same rows.

    python -m bench.sequencer [--sequences 100000] [--batch 500] [--profile FILE]

Both paths start from N active cancellation-recovery sequences (one per patient, in one clinic,
with a patient row each) whose step-1 timers are all due, at a moment inside allowed hours.

- **Pipeline** (`sequencer_steps`): `shared.timer_poller.TimerPoller` with the sequencer's own timer
  handler, as the service runs it (`REVISIT_SEQUENCER_TIMER_WORKERS` pollers, default 2,
  sharing the due timers through SKIP LOCKED; batches of `--batch`). Per batch: claim the due timers
  (`FOR UPDATE SKIP LOCKED`) and delete them, lock the patients and their sequences, load the
  clinic's rules and workflows, decide every step in the pure core (allowed hours, caps,
  consent), then in one statement per table save the sequences, the patients' send history,
  the step rows and step 2's timers, and stage a SendStep and a StepScheduled per sequence in
  the outbox. The clock stops when the last batch has committed (the relay is not running:
  the figure is timer to outbox).
- **Baseline** (`sequencer_raw_asyncpg`): a plain asyncpg loop over the same data: claim and
  delete 500 due timers, then insert the same number of outbox rows (pre-serialised bodies),
  step rows and next timers and update the sequences, with `executemany`, one transaction per
  batch. No validation, no rules, no event building: the floor the database sets.
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
from datetime import UTC, datetime, timedelta

import asyncpg

from bench._harness import (
    CpuMeter,
    Infra,
    detail,
    figure,
    infrastructure,
    load_average,
    machine_line,
    rate,
    run_async,
    say,
)
from revisit.migrate import migrate_all
from services.sequencer.domain.model import STEP_TIMER
from services.sequencer.domain.workflows import Catalogue
from services.sequencer.handlers import timer_handler
from services.sequencer.repository import SCHEMA
from services.sequencer.settings import SequencerSettings
from shared.clock import FixedClock
from shared.config import DatabaseSettings, KafkaSettings, RevisitSettings
from shared.db import make_engine, make_sessions
from shared.events import new_event
from shared.events.common import Channel, ClinicalUrgency, Purpose, Segment, ServiceLine
from shared.events.outreach import SendStep
from shared.inbox import Inbox
from shared.outbox import Outbox
from shared.runtime import Runtime, freeze_startup_heap
from shared.timer_poller import TimerPoller
from shared.timers import Timers

TARGET = 2000.0
CLINIC = "clinic-bench"
NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # Tuesday 10:00 in New York: allowed hours
TABLES = ("sequences", "patients", "steps", "activity", "timers", "outbox")


# --- data ---------------------------------------------------------------------------------------


async def seed(dsn: str, n: int) -> None:
    """N active sequences at step 1 with due timers, and a patient row each (COPY)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"TRUNCATE {', '.join(f'{SCHEMA}.{t}' for t in TABLES)}")
        due = NOW - timedelta(minutes=1)
        seqs, patients, timers = [], [], []
        payload = json.dumps({"clinic_id": CLINIC, "trace": {}})
        for i in range(n):
            key = f"{CLINIC}:pt-{i:07d}"
            sid = f"seq-bench-{i:07d}"
            seqs.append(
                (
                    sid, key, CLINIC, f"cnr-{i}", "cancelled_not_rescheduled", "reactivation",
                    "skin_check", "cancellation_recovery", "care", "routine", "dr-1", "loc-1",
                    4, 0, "active", 1, due, True, NOW - timedelta(hours=2), "America/New_York",
                    str(uuid.uuid4()),
                )
            )  # fmt: skip
            patients.append((key, CLINIC))
            timers.append((STEP_TIMER, f"{sid}:1", due, key, payload))
        await conn.copy_records_to_table(
            "sequences",
            schema_name=SCHEMA,
            columns=[
                "sequence_id", "patient_key", "clinic_id", "eligibility_id", "segment", "kind",
                "service_line", "workflow_key", "purpose", "urgency", "provider_id",
                "location_id", "steps_planned", "steps_sent", "state", "next_step", "next_due",
                "armed", "started_at", "time_zone", "correlation_id",
            ],
            records=seqs,
        )  # fmt: skip
        await conn.copy_records_to_table(
            "patients", schema_name=SCHEMA, columns=["patient_key", "clinic_id"], records=patients
        )
        await conn.executemany(
            f"INSERT INTO {SCHEMA}.timers (kind, timer_key, due_at, patient_key, payload) "
            "VALUES ($1, $2, $3, $4, $5::jsonb)",
            timers,
        )
        await conn.execute(f"ANALYZE {SCHEMA}.sequences")
        await conn.execute(f"ANALYZE {SCHEMA}.patients")
        await conn.execute(f"ANALYZE {SCHEMA}.timers")
    finally:
        await conn.close()


async def count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


# --- the two paths ------------------------------------------------------------------------------


async def run_pipeline(infra: Infra, n: int, batch: int, profile: str | None) -> float:
    settings = RevisitSettings(
        db=DatabaseSettings(database_url=infra.database_url),
        kafka=KafkaSettings(kafka_bootstrap_servers=infra.bootstrap),
    )
    engine = make_engine(settings.db, application_name="bench-sequencer")
    sessions = make_sessions(engine)
    clock = FixedClock(NOW)
    runtime = Runtime(
        service="sequencer",
        settings=settings,
        engine=engine,
        sessions=sessions,
        clock=clock,
        outbox=Outbox(SCHEMA),
        inbox=Inbox(SCHEMA),
        timers=Timers(SCHEMA),
    )
    rules = SequencerSettings().rules("America/New_York")
    Catalogue.default()  # import-time work out of the timed part
    fire = timer_handler(runtime, rules)
    workers = SequencerSettings().timer_workers
    pollers = [
        TimerPoller(sessions, SCHEMA, clock, {STEP_TIMER: fire}, batch_size=batch)
        for _ in range(workers)
    ]

    async def drain(poller: TimerPoller) -> int:
        fired = 0
        while (got := await poller.fire_due()) > 0:
            fired += got
        return fired

    freeze_startup_heap()  # as run_service does once the service is built
    profiler = cProfile.Profile() if profile else None
    try:
        with CpuMeter(infra.pids) as cpu:
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            fired = sum(await asyncio.gather(*(drain(p) for p in pollers)))
            elapsed = time.perf_counter() - started
            if profiler:
                profiler.disable()
        if profiler and profile:
            profiler.dump_stats(profile)
        detail(
            f"pipeline: {fired} timers fired in {elapsed:.1f}s; cpu per step: "
            f"{cpu.per_event(fired)}"
        )
        return rate(fired, elapsed)
    finally:
        await engine.dispose()


async def run_raw(infra: Infra, n: int, batch: int) -> float:
    """The same rows, written by a plain asyncpg loop (the floor)."""
    sample = new_event(
        SendStep(
            sequence_id="seq-bench-0000000",
            step=1,
            workflow_key="cancellation_recovery",
            template_key="cancellation_recovery.1",
            channel=Channel.sms,
            purpose=Purpose.care,
            clinical_urgency=ClinicalUrgency.routine,
            segment=Segment.cancelled_not_rescheduled,
            service_line=ServiceLine.skin_check,
            not_before=NOW,
            expires_at=NOW + timedelta(hours=24),
        ),
        clinic_id=CLINIC,
        patient_key=f"{CLINIC}:pt-0000000",
        occurred_at=NOW,
    )
    body = sample.to_bytes()
    conn = await asyncpg.connect(infra.plain_dsn)
    try:
        with CpuMeter(infra.pids) as cpu:
            started = time.perf_counter()
            done = 0
            while done < n:
                async with conn.transaction():
                    rows = await conn.fetch(
                        f"DELETE FROM {SCHEMA}.timers WHERE id IN (SELECT id FROM {SCHEMA}.timers "
                        "WHERE due_at <= $1 AND kind = 'step' ORDER BY due_at, id LIMIT $2 "
                        "FOR UPDATE SKIP LOCKED) RETURNING timer_key, patient_key",
                        NOW,
                        batch,
                    )
                    if not rows:
                        break
                    sids = [r["timer_key"].rpartition(":")[0] for r in rows]
                    await conn.execute(
                        f"UPDATE {SCHEMA}.sequences SET steps_sent = 1, next_step = 2 "
                        "WHERE sequence_id = ANY($1)",
                        sids,
                    )
                    await conn.executemany(
                        f"INSERT INTO {SCHEMA}.outbox (event_id, topic, message_key, event_type, "
                        "body, headers) VALUES ($1, $2, $3, $4, $5, '{}'::jsonb)",
                        [
                            (uuid.uuid4(), topic, r["patient_key"], kind, body)
                            for r in rows
                            for topic, kind in (
                                ("outreach.commands.v1", "SendStep"),
                                ("outreach.sequences.v1", "StepScheduled"),
                            )
                        ],
                    )
                    await conn.executemany(
                        f"INSERT INTO {SCHEMA}.steps (sequence_id, step, clinic_id, status, "
                        "updated_at) VALUES ($1, $2, $3, $4, $5)",
                        [(s, k, CLINIC, st, NOW) for s in sids for k, st in
                         ((1, "commanded"), (2, "scheduled"))],
                    )  # fmt: skip
                    await conn.executemany(
                        f"INSERT INTO {SCHEMA}.timers (kind, timer_key, due_at, patient_key) "
                        "VALUES ('step', $1, $2, $3)",
                        [(f"{s}:2", NOW + timedelta(days=2), r["patient_key"])
                         for s, r in zip(sids, rows, strict=True)],
                    )  # fmt: skip
                done += len(rows)
            elapsed = time.perf_counter() - started
        detail(f"raw: {done} steps in {elapsed:.1f}s; cpu per step: {cpu.per_event(done)}")
        return rate(done, elapsed)
    finally:
        await conn.close()


async def bench(infra: Infra, args: argparse.Namespace) -> None:
    await migrate_all(infra.database_url)
    n = args.sequences
    detail(f"seeding {n} active sequences with due step timers")
    await seed(infra.plain_dsn, n)
    raw = await run_raw(infra, n, args.batch)
    await seed(infra.plain_dsn, n)
    detail(f"load average before the pipeline: {load_average()}")
    steps = await run_pipeline(infra, n, args.batch, args.profile)
    commanded = await count(
        infra.plain_dsn, f"SELECT count(*) FROM {SCHEMA}.outbox WHERE event_type = 'SendStep'"
    )
    scheduled = await count(
        infra.plain_dsn, f"SELECT count(*) FROM {SCHEMA}.timers WHERE timer_key LIKE '%:2'"
    )
    detail(f"outbox SendStep rows {commanded}, step-2 timers {scheduled} (expected {n} each)")
    say(figure("sequencer_steps", steps, "steps/s", f"target >= {TARGET:.0f}"))
    say(figure("sequencer_raw_asyncpg", raw, "steps/s", "baseline, same rows, same database"))
    say(figure("sequencer_ratio", steps / raw if raw else 0.0, "", "pipeline / raw"))
    if commanded != n:
        say(f"BELOW TARGET: only {commanded} of {n} steps reached the outbox")
    elif steps < TARGET:
        say(f"BELOW TARGET: sequencer_steps {steps:.0f} < {TARGET:.0f} steps/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sequencer", description=__doc__)
    parser.add_argument("--sequences", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--profile", help="write a cProfile of the pipeline phase here")
    args = parser.parse_args(argv)
    if args.sequences < 1 or not 1 <= args.batch <= 5000:
        parser.error("--sequences >= 1 and 1 <= --batch <= 5000")
    say(machine_line("sequencer"))
    started = time.perf_counter()
    # The service runs under uvicorn, which uses uvloop when it is installed (it is, with
    # uvicorn[standard]); both paths run on the same loop here.
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    detail(f"event loop policy: {type(asyncio.get_event_loop_policy()).__module__}")
    try:
        with infrastructure("revisit-bench-sequencer-") as infra:
            run_async(bench(infra, args))
    except KeyboardInterrupt:
        print("# interrupted; everything started was stopped", file=sys.stderr)
        return 130
    detail(f"wall time {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
