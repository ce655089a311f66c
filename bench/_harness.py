"""Small helpers every benchmark shares: infrastructure, topics, timing and the output format.

A bench is run as ``python -m bench.<name>`` (``make bench-<name>``). It starts an embedded
Postgres (fast mode) and an embedded broker in a temporary folder, or uses the servers named
by ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` when set (they must be disposable), and
removes everything it started on the way out, including on Ctrl-C or SIGTERM.

Result lines follow one convention so that scripts can grep them::

    <figure>: <value> <unit> (<note>)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from revisit.embedded.broker import EmbeddedBroker
from revisit.embedded.postgres import EmbeddedPostgres, ExternalPostgres
from revisit.migrate import migrate_all
from shared.kafka import ensure_topics

# --- machine and output ---------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def machine_line(bench: str) -> str:
    return (
        f"# bench {bench}: nproc={os.cpu_count()} cpu={cpu_model()!r} "
        f"python={platform.python_version()} ({sys.implementation.name})"
    )


def figure(name: str, value: float, unit: str, note: str) -> str:
    """One result line: ``<name>: <value> <unit> (<note>)``; rates are whole numbers."""
    shown = f"{value:.0f}" if abs(value) >= 100 else f"{value:.2f}"
    unit = f" {unit}" if unit else ""
    return f"{name}: {shown}{unit} ({note})"


def say(line: str) -> None:
    print(line, flush=True)


def detail(line: str) -> None:
    """A progress or detail line; starts with '#' so it never looks like a figure."""
    print(f"#   {line}", flush=True)


# --- timing ---------------------------------------------------------------------------------


@dataclass
class Stopwatch:
    """Named marks on the monotonic clock."""

    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, name: str, *, once: bool = False) -> float:
        now = time.perf_counter()
        if once and name in self.marks:
            return self.marks[name]
        self.marks[name] = now
        return now

    def between(self, start: str, end: str) -> float:
        return self.marks[end] - self.marks[start]


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


# --- infrastructure -------------------------------------------------------------------------


@dataclass(frozen=True)
class Infra:
    database_url: str  # SQLAlchemy async URL (postgresql+asyncpg://...)
    plain_dsn: str  # libpq/asyncpg form, for LISTEN connections
    bootstrap: str
    embedded: bool  # True when this process started (and will remove) both servers


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so every ``finally`` runs."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


@contextlib.contextmanager
def infrastructure(prefix: str = "revisit-bench-") -> Iterator[Infra]:
    """Postgres and a broker for one bench run; cleaned up however the run ends.

    Started from the main thread and synchronously, before the event loop: the servers are
    our children with a parent-death signal, so even a SIGKILL of this process takes them down.
    """
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    external_db = os.environ.get("DATABASE_URL", "")
    external_kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    base: Path | None = None
    pg: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    try:
        if not (external_db and external_kafka):
            base = Path(tempfile.mkdtemp(prefix=prefix))
        if external_db:
            ext = ExternalPostgres.from_url(external_db)
            database_url, plain = ext.dsn, ext.plain_dsn
        else:
            assert base is not None
            pg = EmbeddedPostgres(base / "pg" / "data", fast=True, log_path=base / "pg.log")
            pg.start()
            database_url, plain = pg.dsn, pg.plain_dsn
        if external_kafka:
            bootstrap = external_kafka
        else:
            assert base is not None
            broker = EmbeddedBroker(log_path=base / "broker.log")
            broker.start()
            bootstrap = broker.bootstrap
        yield Infra(database_url, plain, bootstrap, embedded=pg is not None and broker is not None)
    finally:
        # Clients are stopped by the bench before we get here: broker first, then Postgres.
        if broker is not None:
            broker.stop(timeout=8)
        if pg is not None:
            pg.stop()
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


async def prepare(infra: Infra, topics: Sequence[str] = (), partitions: int = 6) -> None:
    """Run every schema's migrations and create the project's topics plus ``topics``."""
    await migrate_all(infra.database_url)
    await ensure_topics(infra.bootstrap, partitions)
    if topics:
        await ensure_topics(infra.bootstrap, partitions, names=topics)


# --- Kafka helpers ----------------------------------------------------------------------------


async def stop_quietly(*clients: object, timeout: float = 5.0) -> None:
    """Stop aiokafka clients / FastStream brokers without letting a hang stall the cleanup."""
    for client in clients:
        if client is None:
            continue
        stop = getattr(client, "stop", None)
        if stop is None:
            continue
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(stop(), timeout=timeout)


async def produce_all(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes, bytes]], chunk: int = 5000
) -> int:
    """Send ``(key, value)`` pairs to ``topic`` as fast as the client goes; returns the count."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="bench-loader",
        acks="all",
        linger_ms=10,
        max_batch_size=256 * 1024,
        request_timeout_ms=30000,
    )
    await producer.start()
    sent = 0
    try:
        pending: list[asyncio.Future[object]] = []
        for key, value in messages:
            pending.append(await producer.send(topic, value=value, key=key))
            sent += 1
            if len(pending) >= chunk:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await stop_quietly(producer)
    return sent


class TopicCounter:
    """Counts records arriving on a topic (all partitions, from the beginning, no group).

    ``header`` (name, value) counts only records carrying that header. ``done`` is set and
    ``finished_at`` marked (perf_counter) when ``target`` records have been seen.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        target: int,
        *,
        header: tuple[str, bytes] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.target = target
        self.header = header
        self.count = 0
        self.first_at: float | None = None
        self.finished_at: float | None = None
        self.done = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id="bench-counter",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=5000,
        )
        await consumer.start()
        self._consumer = consumer
        partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            await consumer.force_metadata_update()
            partitions = consumer.partitions_for_topic(self.topic) or set()
        if not partitions:
            raise RuntimeError(f"topic {self.topic} has no partitions")
        consumer.assign([TopicPartition(self.topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        self._task = asyncio.create_task(self._run(), name=f"count-{self.topic}")

    async def _run(self) -> None:
        assert self._consumer is not None
        while self.count < self.target:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            for records in batches.values():
                if self.header is None:
                    seen = len(records)
                else:
                    name, value = self.header
                    seen = sum(1 for r in records if (name, value) in (r.headers or ()))
                if seen and self.first_at is None:
                    self.first_at = time.perf_counter()
                self.count += seen
        self.finished_at = time.perf_counter()
        self.done.set()

    async def wait(self, timeout: float) -> bool:
        """True once ``target`` records were counted; False after ``timeout`` seconds."""
        assert self._task is not None
        waiter = asyncio.ensure_future(self.done.wait())
        try:
            await asyncio.wait({waiter, self._task}, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            waiter.cancel()
        if self._task.done() and not self.done.is_set():
            self._task.result()  # the counter itself failed: say why
        return self.done.is_set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await stop_quietly(self._consumer)
