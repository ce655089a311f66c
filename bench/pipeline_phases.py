"""The phases of ``bench.pipeline``: warm-up, bursts, steady rate, ceilings (see its docstring)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench._harness import (
    Infra,
    detail,
    figure,
    load_average,
    produce_all,
    rate,
    say,
    tree_cpu_seconds,
)
from bench.pipeline_figures import BurstResult, ms_line, report_burst, report_steady
from bench.pipeline_load import EVENTS_PER_PATIENT, burst, client_for, steady, submissions
from bench.pipeline_profile import Profiles
from bench.pipeline_report import LagSeries, Outcomes
from revisit.stack import DEMO_CLINIC, StartedStack
from shared.clock import set_clock


@dataclass
class Stack:
    started: StartedStack
    data_dir: Path
    engine: AsyncEngine | None = None
    client: httpx.AsyncClient | None = None
    now: datetime | None = None

    async def open(self, at: datetime) -> None:
        self.engine = create_async_engine(self.started.backing.dsn, pool_size=2)
        await set_clock(self.engine, at, rate=0)
        self.now = at
        self.client = client_for(self.started.base["ingest"], self.started.creds["api_key"])

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self.engine is not None:
            await self.engine.dispose()

    @property
    def bootstrap(self) -> str:
        return self.started.backing.bootstrap

    def pids(self) -> dict[str, int]:
        """Every service's pid, and the embedded Postgres and broker (children of this one)."""
        pids = dict(self.started.sup.pids)
        for child in psutil.Process(os.getpid()).children():
            with contextlib.suppress(psutil.Error):
                name = child.name()
                if name.startswith("postgres"):
                    pids["postgres"] = child.pid
                elif "tansu" in name or "tansu" in " ".join(child.cmdline()):
                    pids["broker"] = child.pid
        return pids

    def infra(self) -> Infra:
        from revisit.embedded.postgres import ExternalPostgres

        dsn = self.started.backing.dsn
        return Infra(dsn, ExternalPostgres.from_url(dsn).plain_dsn, self.bootstrap, True)

    async def scalar(self, sql: str, **params: Any) -> Any:
        assert self.engine is not None
        async with self.engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()


class CpuTrack:
    """CPU seconds of each process, sampled every second while a phase runs, so the share of a
    core can be taken over the busy part only (not the wait for a stalled run to give up)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._task: asyncio.Task[None] | None = None

    def _take(self) -> None:
        self.samples.append(
            (time.perf_counter(), {n: tree_cpu_seconds(p) for n, p in self.pids.items()})
        )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._take()

    def __enter__(self) -> CpuTrack:
        self._take()
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self._take()

    def shares(self, until: float | None = None) -> dict[str, float]:
        """Percent of one core each process used from the start to ``until`` (perf_counter)."""
        start_at, start = self.samples[0]
        end_at, end = self.samples[-1]
        if until is not None:
            end_at, end = min(self.samples, key=lambda s: abs(s[0] - until))
        span = end_at - start_at
        return {n: 100 * (end[n] - start[n]) / span if span > 0 else 0.0 for n in self.pids}


def _label(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


async def _run_load(stack: Stack, run: str) -> Outcomes:
    outcomes = Outcomes(stack.bootstrap, f"{DEMO_CLINIC}:{run}-")
    await outcomes.start()
    return outcomes


async def warm_up(stack: Stack, patients: int = 50) -> None:
    """Every consumer group joined and every path run once before anything is timed."""
    run = f"w{uuid.uuid4().hex[:6]}"
    outcomes = await _run_load(stack, run)
    assert stack.client is not None and stack.now is not None
    try:
        await burst(stack.client, submissions(run, patients, stack.now))
        ok = await outcomes.wait_settled(patients, stall_s=90, limit_s=180)
        state = "ok" if ok else "NOT ALL"
        detail(f"warm-up: {outcomes.settled()}/{patients} patients settled ({state})")
    finally:
        await outcomes.stop()


async def burst_phase(stack: Stack, size: int, args: argparse.Namespace) -> BurstResult:
    label = _label(size)
    run = f"b{label}{uuid.uuid4().hex[:4]}"
    assert stack.client is not None and stack.now is not None
    outcomes = await _run_load(stack, run)
    events = size * EVENTS_PER_PATIENT
    detail(f"burst {label}: posting {size} patients ({events} events); load {load_average()}")
    profile_dir = Path(args.profile) if args.profile else None
    profiles = Profiles(profile_dir or Path("."), f"burst-{label}", stack.started.sup.pids)
    with CpuTrack(stack.pids()) as cpu, profiles if profile_dir else contextlib.nullcontext():
        wall_start = time.time()
        posted = await burst(stack.client, submissions(run, size, stack.now))
        took = (posted.last_accepted or 0.0) - (posted.first_sent or 0.0)
        detail(f"burst {label}: ingest took {posted.events} events in {took:.1f} s; waiting")
        settled_all = await outcomes.wait_settled(size, stall_s=args.settle_stall, limit_s=3600)
    shares = cpu.shares(until=outcomes.last_progress)
    busy = max(0.0, outcomes.last_progress - cpu.samples[0][0])
    per_patient = {n: 10 * v * busy / max(size, 1) for n, v in shares.items()}  # ms
    await outcomes.stop()
    detail(f"burst {label}: cpu per patient: {ms_line(per_patient)}")
    return report_burst(label, size, posted, outcomes, wall_start, settled_all, shares, profiles)


async def _sample_lag(bootstrap: str, series: LagSeries, stop: asyncio.Event, every: float) -> None:
    from services.metrics.offsets import OffsetSampler

    sampler = OffsetSampler(bootstrap, every, client_id="bench-pipeline-lag")
    started = time.perf_counter()
    try:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                sample = await sampler.take()
                series.add(time.perf_counter() - started, sample.lag.items())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
    finally:
        await sampler._close()


async def steady_phase(
    stack: Stack, events_per_second: float, seconds: float, args: argparse.Namespace
) -> None:
    run = f"s{uuid.uuid4().hex[:6]}"
    assert stack.client is not None and stack.now is not None
    outcomes = await _run_load(stack, run)
    detail(f"steady: {events_per_second:.0f} events/s for {seconds:.0f} s; load {load_average()}")
    series, stop = LagSeries(), asyncio.Event()
    sampler = asyncio.create_task(_sample_lag(stack.bootstrap, series, stop, 5.0))
    bodies = submissions(run, 10_000_000, stack.now)
    with CpuTrack(stack.pids()) as cpu:
        posted = await steady(stack.client, bodies, events_per_second, seconds)
    shares = cpu.shares()
    expected = len(posted.accepted_at)
    await outcomes.wait_settled(expected, stall_s=args.settle_stall, limit_s=1800)
    stop.set()
    await sampler
    await outcomes.stop()
    report_steady(run, events_per_second, posted, outcomes, series, shares)


async def ceilings_phase(stack: Stack, best_e2e: float, n: int = 50_000) -> None:
    """Raw aiokafka consume -> produce and a raw asyncpg batch insert on the same servers."""
    from bench.backbone import input_events, run_raw
    from bench.segmenter import raw_inserts
    from shared.kafka import ensure_topics

    infra = stack.infra()
    tag = uuid.uuid4().hex[:6]
    topics = [f"bench.pipeline.{tag}.in", f"bench.pipeline.{tag}.out"]
    await ensure_topics(stack.bootstrap, 6, names=topics)
    await produce_all(stack.bootstrap, topics[0], input_events(n, 5000, uuid.uuid4()))
    raw = await run_raw(infra, n, topics[0], topics[1], f"bench.pipeline.{tag}", 300)
    raw_rate = rate(raw["count"], raw["seconds"])
    say(
        figure(
            "pipeline_ceiling_raw_aiokafka",
            raw_rate,
            "events/s",
            "consume -> json -> produce -> commit, same broker, no database",
        )
    )
    rows = 100_000
    seconds = await raw_inserts(infra, rows, 700, 500)
    insert_rate = rate(rows, seconds)
    say(
        figure(
            "pipeline_ceiling_raw_asyncpg_insert",
            insert_rate,
            "rows/s",
            "executemany of 700-byte rows, 500 per transaction, same database",
        )
    )
    if raw_rate:
        say(
            figure(
                "pipeline_ratio_end_to_end_vs_aiokafka",
                best_e2e / raw_rate,
                "",
                "best burst end-to-end / raw consume-produce (one hop)",
            )
        )
    if insert_rate:
        say(
            figure(
                "pipeline_ratio_end_to_end_vs_asyncpg",
                best_e2e / insert_rate,
                "",
                "best burst end-to-end / raw insert (one table)",
            )
        )
