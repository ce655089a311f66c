"""Segmenter events with several consumer processes in one consumer group.

This is how the segmenter scales: one consumer group, the topic's partitions shared among the
replicas (a patient is always on one partition, so one replica at a time owns a patient), and
the state cache safe across them (an entry is used only while the patient row's ``rev`` still
matches). Each replica runs exactly what ``bench.segmenter.run_pipeline`` runs in-process: the
real subscription (FastStream batch consumer, runner with inbox, journey handler, outbox), no
relay. The clock starts at the first committed batch, so the group's rebalance when the second
replica joins is inside the measured time.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench._harness import CpuMeter, Infra, produce_all, stop_quietly
from bench.segmenter import S, _until_consumed, ehr_stream, subscribed_segmenter
from shared.kafka import ensure_topics
from shared.runtime import freeze_startup_heap
from shared.topics import Topic


async def _replica(infra: Infra, topic: Topic, group: str, number: int) -> None:
    broker, producer, engine = subscribed_segmenter(
        infra, topic, group, f"bench-segmenter-{number}"
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await producer.start()
        await broker.start()
        freeze_startup_heap()
        await stop.wait()
    finally:
        await stop_quietly(broker, producer)
        await engine.dispose()


def _replica_main(infra: Infra, topic: Topic, group: str, number: int) -> None:
    asyncio.run(_replica(infra, topic, group, number))


async def run_replicas(infra: Infra, total: int, limit: float, replicas: int) -> dict[str, Any]:
    """The same events as ``run_pipeline``, consumed by ``replicas`` processes of one group."""
    topic = Topic(f"bench.ehr.{uuid.uuid4().hex[:8]}.v1", "bench input")
    await ensure_topics(infra.bootstrap, 6, names=[topic.name, topic.dlq])
    messages = list(ehr_stream(total, datetime.now(UTC), f"r{replicas}"))
    total = len(messages)
    await produce_all(infra.bootstrap, topic.name, messages)
    group = f"bench-{replicas}-replicas"  # its own inbox rows, apart from other runs'
    spawn = multiprocessing.get_context("spawn")
    processes = [
        spawn.Process(target=_replica_main, args=(infra, topic, group, n), daemon=True)
        for n in range(replicas)
    ]
    for process in processes:
        process.start()
    conn = await asyncpg.connect(infra.plain_dsn)
    count_outbox = f"SELECT count(*) FROM {S}.outbox"
    pids = {**infra.pids, **{f"replica {n}": p.pid for n, p in enumerate(processes) if p.pid}}
    try:
        outbox_before = await conn.fetchval(count_outbox)
        with CpuMeter(pids) as cpu:
            done, seconds, finished = await _until_consumed(
                conn, f"segmenter.{group}", total, limit
            )
        outbox = await conn.fetchval(count_outbox) - outbox_before
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        await conn.close()
    return {
        "count": done,
        "seconds": seconds,
        "finished": finished,
        "outbox": outbox,
        "total": total,
        "cpu": cpu.per_event(done),
    }
