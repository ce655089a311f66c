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
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from revisit.embedded.broker import EmbeddedBroker
from revisit.embedded.postgres import EmbeddedPostgres, ExternalPostgres
from revisit.migrate import migrate_all
from shared.kafka import ensure_topics

T = TypeVar("T")

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


def load_average() -> str:
    """The 1-minute load average: other work on the machine skews wall-clock figures."""
    with contextlib.suppress(OSError):
        return Path("/proc/loadavg").read_text().split()[0]
    return "?"


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu(pid: int) -> tuple[int, float]:
    """(parent pid, CPU seconds used by ``pid`` and its reaped children) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return int(fields[1]), (utime + stime + cutime + cstime) / _TICKS


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by ``root`` and every live descendant (Linux; 0.0 elsewhere).

    A descendant that exited and was reaped is counted in its parent's children time; one that
    exited between two samples is lost, which is why this is a detail figure, not a result.
    """
    usage: dict[int, tuple[int, float]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    usage[int(entry)] = _proc_cpu(int(entry))
    if root not in usage:
        return 0.0
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in usage.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += usage[pid][1]
        stack.extend(children.get(pid, ()))
    return total


@dataclass
class CpuMeter:
    """CPU seconds used by this process and by each server this process started."""

    pids: dict[str, int]
    start: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0

    def _sample(self) -> dict[str, float]:
        sample = {"python": time.process_time(), "wall": time.perf_counter()}
        for name, pid in self.pids.items():
            sample[name] = tree_cpu_seconds(pid)
        return sample

    def __enter__(self) -> CpuMeter:
        self.start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        self.wall = end.pop("wall") - self.start["wall"]
        self.used = {name: end[name] - self.start[name] for name in end}

    def per_event(self, count: int, busy_seconds: float | None = None) -> str:
        """``python 180 us (85% of a core), postgres 40 us, broker 20 us`` per event.

        The share of a core this process got (over ``busy_seconds``, default the metered wall
        time) says how much the machine's other work held it back: a Python-bound path near
        100% is limited by its own code, one far below by its neighbours.
        """
        if count <= 0:
            return "n/a"
        wall = busy_seconds if busy_seconds is not None else self.wall
        parts = []
        for name, sec in self.used.items():
            part = f"{name} {1e6 * sec / count:.0f} us"
            if name == "python" and wall > 0:
                part += f" ({100 * sec / wall:.0f}% of a core)"
            parts.append(part)
        return ", ".join(parts)


# --- infrastructure -------------------------------------------------------------------------


@dataclass(frozen=True)
class Infra:
    database_url: str  # SQLAlchemy async URL (postgresql+asyncpg://...)
    plain_dsn: str  # libpq/asyncpg form, for LISTEN connections
    bootstrap: str
    embedded: bool  # True when this process started (and will remove) both servers
    # Root pids of the servers this process started ("postgres", "broker"), for CPU accounting.
    pids: dict[str, int] = field(default_factory=dict)


class _Terminated(KeyboardInterrupt):
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
        pids = {}
        if pg is not None and pg.pid is not None:
            pids["postgres"] = pg.pid
        if broker is not None and broker.pid is not None:
            pids["broker"] = broker.pid
        yield Infra(
            database_url,
            plain,
            bootstrap,
            embedded=pg is not None and broker is not None,
            pids=pids,
        )
    finally:
        # Bounded (each stop escalates to SIGKILL), so a second Ctrl-C or SIGTERM must not cut
        # it short and leave a server or the folder behind.
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Clients are stopped by the bench before we get here: broker first, then Postgres.
        if broker is not None:
            broker.stop(timeout=8)
        if pg is not None:
            pg.stop()
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, with SIGTERM handled like Ctrl-C: the main task is cancelled, so
    every client is stopped by the bench's own ``finally`` blocks before the servers go."""

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        previous = signal.getsignal(signal.SIGTERM)
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            return await main
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            signal.signal(signal.SIGTERM, previous)

    try:
        return asyncio.run(guarded())
    except asyncio.CancelledError:
        raise _Terminated from None


async def prepare(infra: Infra, topics: Sequence[str] = (), partitions: int = 6) -> None:
    """Run every schema's migrations and create the project's topics plus ``topics``."""
    await migrate_all(infra.database_url)
    await ensure_topics(infra.bootstrap, partitions)
    if topics:
        await ensure_topics(infra.bootstrap, partitions, names=topics)


# --- Kafka helpers ----------------------------------------------------------------------------


async def delete_topics(bootstrap: str, names: Sequence[str]) -> None:
    """Remove a bench's own topics from a broker it did not start (best effort)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-admin")
    try:
        await admin.start()
        await admin.delete_topics(list(names))
    except Exception as exc:  # a leftover topic is litter, not a failed bench
        detail(f"could not delete topics {', '.join(names)}: {type(exc).__name__}")
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(admin.close(), timeout=5)


async def stop_quietly(*clients: object, limit: float = 5.0) -> None:
    """Stop aiokafka clients / FastStream brokers without letting a hang stall the cleanup."""
    for client in clients:
        if client is None:
            continue
        stop = getattr(client, "stop", None)
        if stop is None:
            continue
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(stop(), timeout=limit)


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
        # topics() refreshes the cluster metadata when a topic's partitions are not known yet.
        partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            await consumer.topics()
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

    async def wait(self, limit: float) -> bool:
        """True once ``target`` records were counted; False after ``limit`` seconds."""
        assert self._task is not None
        waiter = asyncio.ensure_future(self.done.wait())
        try:
            await asyncio.wait({waiter, self._task}, timeout=limit, return_when="FIRST_COMPLETED")
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
