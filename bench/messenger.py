"""Messenger: sends per second through the sandbox provider with every send-time check on, and
the Twilio inbound webhook's latency with the reply stored before the 2xx.

    python -m bench.messenger [--sends 5000] [--webhooks 1000] [--rate 10] [--concurrency 8]

The messenger runs as its own process (``revisit service messenger``, as in production) on the
controlled clock, frozen at noon in the patients' time zone. Every patient has a contact card
and no send history, so every check runs and passes: expiry, contact, deceased/inactive, wrong
number, opt-out, consent for the purpose, open escalations, an approved template, quiet hours,
the frequency caps, and the re-check at dispatch time.

- ``messenger_sends``: N ``SendStep`` commands are put on ``outreach.commands.v1``; the clock
  runs from just before the first is produced until the N-th ``MessageSent`` is read back from
  ``outreach.messages.v1`` (so the consumer, the queue, the dispatcher, the sandbox provider and
  the outbox relay are all inside it).
  Baseline (same run, same database): the sandbox provider alone, storing N messages in batches.
- ``messenger_webhook_p99``: M signed, form-encoded Twilio webhook POSTs (real HTTP, real
  uvicorn), a mix of STOP, BOOK, HELP, questions and free text, sent open-loop at ``--rate``
  replies per second (default 10/s: hundreds of thousands of replies a day, far above what a
  practice group receives), each timed from the moment it was due, so a server that falls
  behind shows as latency. The handler commits the reply before it answers; the first 100
  replies are also looked up in the database as soon as their 2xx arrives (outside the timing).
  Baseline: ``GET /healthz`` on the same server at the same rate. A detail line gives the
  capacity: replies per second back to back at ``--concurrency``. The replies are the labelled
  corpus's 2,250 (services/messenger/replies/corpus/), so every layer of understanding runs.
- ``messenger_classify_p99``: understanding one reply in process (consent rules, safety
  lexicon, the model, intent rules and the merge), over every corpus reply, one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

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
    run_async,
    say,
    stop_quietly,
)
from revisit.embedded.ports import child_preexec, free_port
from services.messenger.domain.classifier import classify, default_model
from services.messenger.domain.consent import read_consent
from services.messenger.domain.red_flags import read_safety
from services.messenger.providers.base import OutgoingMessage
from services.messenger.providers.sandbox import SandboxProvider
from services.messenger.providers.twilio import compute_signature
from services.messenger.replies.corpus import corpus
from shared.clock import set_clock
from shared.config import DatabaseSettings
from shared.db import make_engine, make_sessions
from shared.events import new_event
from shared.events.common import Channel, ClinicalUrgency, Purpose, Segment, ServiceLine
from shared.events.eligibility import Documented, ReasonSource
from shared.events.outreach import SendStep, Tone
from shared.topics import COMMANDS, MESSAGES

TARGET_SENDS = 500.0
TARGET_P99_MS = 100.0
ZONE = "America/Chicago"
NOON = datetime(2026, 3, 3, 18, 0, tzinfo=UTC)  # 12:00 in Chicago
TOKEN = "bench-twilio-token"
JWT_SECRET = "bench-jwt-secret-" + "x" * 24
TARGET_CLASSIFY_MS = 5.0
# Every labelled reply of the corpus (4,350, English and Spanish), so the webhook reads replies
# as varied as patients send, not the same few words from a cache.
BODIES = [x.text for x in corpus() if not x.key.startswith("legacy:")]


def classification_times() -> tuple[list[float], list[float]]:
    """Milliseconds (wall clock, and this process's CPU) to understand each corpus reply, one at
    a time, through every layer (the model file is loaded first: that is start-up, not a reply).
    On a shared machine the wall clock also counts the time other processes held the core."""
    default_model()
    read_consent.cache_clear()
    read_safety.cache_clear()
    wall, cpu = [], []
    for x in corpus():
        started, used = time.perf_counter(), time.process_time()
        classify(x.text, offered_slots=x.offered_slots, opted_out=x.opted_out, today=NOON.date())
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - used) * 1000)
    return wall, cpu


def phone(i: int) -> str:
    return f"+1555{i:07d}"


async def seed_contacts(dsn: str, clinic: str, n: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "contacts",
            schema_name="messenger",
            columns=[
                "patient_key",
                "clinic_id",
                "given_name",
                "phone",
                "language",
                "time_zone",
                "source_updated_at",
            ],
            records=[
                (f"{clinic}:p{i}", clinic, "Ana", phone(i), "en", ZONE, NOON - timedelta(days=1))
                for i in range(n)
            ],
        )
    finally:
        await conn.close()


def commands(clinic: str, n: int) -> Iterator[tuple[bytes, bytes]]:
    for i in range(n):
        key = f"{clinic}:p{i}"
        step = SendStep(
            sequence_id=f"bench-{clinic}-{i}",
            step=1,
            workflow_key="cancellation_recovery",
            template_key="cancellation_recovery.1",
            channel=Channel.sms,
            tone=Tone.supportive,
            purpose=Purpose.care,
            clinical_urgency=ClinicalUrgency.routine,
            segment=Segment.cancelled_not_rescheduled,
            service_line=ServiceLine.skin_check,
            provider_id="dr-1",
            not_before=NOON - timedelta(hours=1),
            expires_at=NOON + timedelta(days=2),
            # What a real cancellation documents: step 1 states it (its date and service).
            documented=Documented(
                source=ReasonSource.cancellation,
                recorded_on=(NOON + timedelta(days=3)).date(),
                recorded_at=NOON + timedelta(days=3),
            ),
        )
        event = new_event(step, clinic_id=clinic, patient_key=key, occurred_at=NOON)
        yield key.encode(), event.to_bytes()


async def count_sent(bootstrap: str, clinic: str, target: int, limit_s: float) -> float | None:
    """perf_counter when the ``target``-th MessageSent for ``clinic`` was read (None: timeout)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=5000,
    )
    await consumer.start()
    seen = 0
    prefix = f"{clinic}:".encode()
    try:
        partitions = consumer.partitions_for_topic(MESSAGES.name) or set()
        consumer.assign([TopicPartition(MESSAGES.name, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        deadline = time.perf_counter() + limit_s
        while time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=100, max_records=5000)
            for records in batches.values():
                for r in records:
                    if (
                        r.key
                        and r.key.startswith(prefix)
                        and b'"type":"MessageSent"' in (r.value or b"")
                    ):
                        seen += 1
            if seen >= target:
                return time.perf_counter()
        detail(f"only {seen} of {target} MessageSent seen before the timeout")
        return None
    finally:
        await stop_quietly(consumer)


async def baseline_sandbox(infra: Infra, n: int) -> float:
    engine = make_engine(DatabaseSettings(database_url=infra.database_url))
    provider = SandboxProvider(make_sessions(engine))
    clinic = f"bench-base-{uuid.uuid4().hex[:6]}"
    messages = [
        OutgoingMessage(
            message_id=str(uuid.uuid4()),
            idempotency_key=f"base-{clinic}-{i}:1",
            clinic_id=clinic,
            patient_key=f"{clinic}:p{i}",
            channel=Channel.sms,
            to=phone(i),
            body="Hi Ana, this is your dermatology practice. Reply STOP to opt out.",
        )
        for i in range(n)
    ]
    try:
        started = time.perf_counter()
        for i in range(0, n, 500):
            await provider.send_many(messages[i : i + 500])
        return rate(n, time.perf_counter() - started)
    finally:
        await engine.dispose()


@contextlib.contextmanager
def messenger_process(
    infra: Infra, port: int, log: Path, profile: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "DATABASE_URL": infra.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
        "KAFKA_PARTITIONS": "6",
        "REVISIT_CLOCK": "controlled",
        "REVISIT_PORT": str(port),
        "REVISIT_JWT_SECRET": JWT_SECRET,
        "REVISIT_MESSENGER_TWILIO_AUTH_TOKEN": TOKEN,
        "REVISIT_MESSENGER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                *(["-m", "cProfile", "-o", profile] if profile else []),
                "-m",
                "revisit",
                "service",
                "messenger",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=child_preexec(),
        )
        try:
            yield process
        finally:
            # uvicorn re-raises the signal it shut down on; SIGINT lets cProfile write its file.
            process.send_signal(signal.SIGINT if profile else signal.SIGTERM)
            try:
                process.wait(timeout=60 if profile else 10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


async def wait_ready(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"messenger exited ({process.returncode}); see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("messenger did not become ready in 60 s")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def signed_form(url: str, i: int) -> tuple[str, str, dict[str, str]]:
    sid = f"SMbench{uuid.uuid4().hex}"
    pairs = [
        ("MessageSid", sid), ("SmsSid", sid), ("AccountSid", "AC" + "0" * 32), ("From", phone(i)),
        ("To", "+15005550006"), ("Body", BODIES[i % len(BODIES)]), ("NumMedia", "0"),
        ("SmsStatus", "received"), ("ApiVersion", "2010-04-01"),
    ]  # fmt: skip
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": compute_signature(TOKEN, url, pairs),
    }
    return sid, urlencode(pairs), headers


async def open_loop(
    base: str,
    m: int,
    per_second: float,
    request: Callable[[httpx.AsyncClient, int], Awaitable[None]],
) -> list[float]:
    """Latencies (ms) of ``m`` requests started at ``per_second``, each measured from the moment
    it was due (so a client that falls behind shows up as latency, not as a slower rate)."""
    latencies: list[float] = []
    # Idle connections expire before the server's 5 s keep-alive closes them under us.
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as client:
        started = time.perf_counter()

        async def one(i: int) -> None:
            due = started + i / per_second
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await request(client, i)
            latencies.append((time.perf_counter() - due) * 1000)

        await asyncio.gather(*(one(i) for i in range(m)))
    return latencies


async def webhooks(
    base: str, m: int, per_second: float, dsn: str, offset: int = 0
) -> tuple[list[float], int, int]:
    """Latencies of ``m`` signed Twilio POSTs, and how many of the first 100 replies were
    already stored when their 2xx arrived, out of how many were checked."""
    url = f"{base}/webhooks/twilio/sms"
    conn = await asyncpg.connect(dsn)
    checking = asyncio.Lock()
    sampled, stored = 0, 0

    async def post(client: httpx.AsyncClient, i: int) -> None:
        nonlocal sampled, stored
        sid, body, headers = signed_form(url, offset + i)
        response = await client.post(url, content=body, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"webhook answered {response.status_code}")
        if i < 100:
            async with checking:
                sampled += 1
                found = await conn.fetchval(
                    "SELECT count(*) FROM messenger.inbound WHERE provider_message_id = $1", sid
                )
                stored += found == 1

    try:
        latencies = await open_loop(base, m, per_second, post)
    finally:
        await conn.close()
    return latencies, stored, sampled


async def healthz(base: str, m: int, per_second: float) -> list[float]:
    async def get(client: httpx.AsyncClient, _i: int) -> None:
        await client.get("/healthz")

    return await open_loop(base, m, per_second, get)


async def capacity(base: str, m: int, concurrency: int, offset: int) -> float:
    """Replies per second the webhook sustains back to back at ``concurrency`` (a detail)."""
    url = f"{base}/webhooks/twilio/sms"
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(i: int) -> None:
            _, body, headers = signed_form(url, offset + i)
            async with gate:
                await client.post(url, content=body, headers=headers)

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(m)))
        return rate(m, time.perf_counter() - started)


async def bench(infra: Infra, args: argparse.Namespace) -> None:
    reading, reading_cpu = classification_times()
    detail(f"classified {len(reading)} corpus replies in process; load average {load_average()}")
    await prepare(infra)
    engine = make_engine(DatabaseSettings(database_url=infra.database_url))
    await set_clock(engine, NOON, rate=0)
    await engine.dispose()
    n, m = args.sends, args.webhooks
    clinic = f"bench-{uuid.uuid4().hex[:6]}"
    patients = max(n, m + min(m, 500))
    detail(f"seeding {patients} contact cards (time zone {ZONE}, clock frozen at local noon)")
    await seed_contacts(infra.plain_dsn, clinic, patients)
    base_rate = await baseline_sandbox(infra, n)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(tempfile.gettempdir()) / f"revisit-bench-messenger-{port}.log"
    with messenger_process(infra, port, log, args.profile) as process:
        await wait_ready(base, process, log)
        detail(f"messenger ready (pid {process.pid}); load average {load_average()}")
        pids = {**infra.pids, "messenger": process.pid}
        with CpuMeter(pids) as cpu:
            started = time.perf_counter()
            counting = asyncio.create_task(count_sent(infra.bootstrap, clinic, n, args.timeout))
            await produce_all(infra.bootstrap, COMMANDS.name, commands(clinic, n))
            finished = await counting
        sends = rate(n, finished - started) if finished else 0.0
        detail(
            f"sends: {n} in {(finished or time.perf_counter()) - started:.1f}s; "
            f"cpu per send: {cpu.per_event(n)}"
        )
        conn = await asyncpg.connect(infra.plain_dsn)
        try:
            sandbox = await conn.fetchval(
                "SELECT count(*) FROM messenger.sandbox_messages WHERE clinic_id = $1", clinic
            )
            blocked = await conn.fetchval(
                "SELECT count(*) FROM messenger.outgoing WHERE clinic_id = $1 AND status <> 'sent'",
                clinic,
            )
            batches = await conn.fetchval(
                "SELECT count(DISTINCT processed_at) FROM messenger.inbox "
                "WHERE consumer = 'messenger.commands'"
            )
            cycles = await conn.fetchval(
                "SELECT count(DISTINCT attempted_at) FROM messenger.outgoing WHERE clinic_id = $1",
                clinic,
            )
        finally:
            await conn.close()
        detail(
            f"sandbox holds {sandbox} messages for the run; {blocked} not sent; "
            f"{batches} command batches, {cycles} dispatcher cycles"
        )

        await healthz(base, 50, args.rate)  # warm up the server's connections
        health = await healthz(base, min(m, 500), args.rate)
        with CpuMeter(pids) as cpu:
            latencies, stored, sampled = await webhooks(base, m, args.rate, infra.plain_dsn)
        detail(
            f"webhooks: {m} at {args.rate:g}/s; cpu per request: {cpu.per_event(m)}; "
            f"{stored}/{sampled} checked replies were stored before their 2xx"
        )
        most = await capacity(base, min(m, 500), args.concurrency, offset=m)
        detail(
            f"webhook capacity: {most:.0f} replies/s back to back at concurrency "
            f"{args.concurrency} (load average {load_average()})"
        )

    p99, p50 = percentile(latencies, 99), percentile(latencies, 50)
    classify_p99 = percentile(reading, 99)
    say(
        figure(
            "messenger_classify_p99",
            classify_p99,
            "ms",
            f"target < {TARGET_CLASSIFY_MS:.0f}; one reply, every layer, {len(reading)} replies",
        )
    )
    say(figure("messenger_classify_p50", percentile(reading, 50), "ms", "median"))
    say(
        figure(
            "messenger_classify_cpu_p99",
            percentile(reading_cpu, 99),
            "ms",
            "the same, this process's CPU time only (what neighbours cannot inflate)",
        )
    )
    say(figure("messenger_sends", sends, "sends/s", f"target >= {TARGET_SENDS:.0f}"))
    say(
        figure(
            "messenger_sends_baseline",
            base_rate,
            "sends/s",
            "the sandbox provider alone, batches of 500, same database",
        )
    )
    say(
        figure(
            "messenger_webhook_p99",
            p99,
            "ms",
            f"target < {TARGET_P99_MS:.0f}; {args.rate:g} replies/s, stored before the 2xx",
        )
    )
    say(figure("messenger_webhook_p50", p50, "ms", "median"))
    say(
        figure(
            "messenger_webhook_baseline_p99",
            percentile(health, 99),
            "ms",
            "GET /healthz, same server, same rate",
        )
    )
    if sends < TARGET_SENDS:
        say(f"BELOW TARGET: messenger_sends {sends:.0f} < {TARGET_SENDS:.0f} sends/s")
    if classify_p99 >= TARGET_CLASSIFY_MS:
        say(f"BELOW TARGET: messenger_classify_p99 {classify_p99:.2f} >= {TARGET_CLASSIFY_MS} ms")
    if p99 >= TARGET_P99_MS:
        say(f"BELOW TARGET: messenger_webhook_p99 {p99:.1f} >= {TARGET_P99_MS:.0f} ms")
    if stored != sampled:
        say(f"BELOW TARGET: only {stored} of {sampled} replies were stored before their 2xx")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.messenger", description=__doc__)
    parser.add_argument("--sends", type=int, default=5000)
    parser.add_argument("--webhooks", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=10.0, help="webhook replies per second")
    parser.add_argument("--concurrency", type=int, default=8, help="for the capacity detail")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--profile", help="run the messenger under cProfile, writing this file")
    args = parser.parse_args(argv)
    if args.sends < 1 or args.webhooks < 1 or args.concurrency < 1 or args.rate <= 0:
        parser.error("--sends, --webhooks, --concurrency and --rate must be positive")
    say(machine_line("messenger"))
    started = time.perf_counter()
    try:
        with infrastructure("revisit-bench-messenger-") as infra:
            run_async(bench(infra, args))
    except KeyboardInterrupt:
        print("# interrupted; everything started was stopped", file=sys.stderr)
        return 130
    detail(f"wall time {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
