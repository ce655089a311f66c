"""The load generator of ``bench.pipeline``: synthetic patients posted to ingest's ``POST /events``.

Each patient is two native JSON events, in one submission and in this order: a PatientUpserted
with a mobile number (Chicago, English) and an AppointmentCancelled recorded three hours
before the bench's (frozen) clock, so the ``cancelled_not_rescheduled`` rule finds it due at
once. Patient ids carry the run's id, so runs never collide with each other or with ingest's
de-duplication. Posting is done by ``concurrency`` clients, as an integration engine would:
a burst (everything, as fast as ingest takes it) or a steady rate for a while.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

EVENTS_PER_PATIENT = 2
CANCELLED_BEFORE = timedelta(hours=3)  # older than the rule's 2 h: due at once


def patient_id(run: str, index: int) -> str:
    return f"{run}-{index:07d}"


def patient_events(run: str, index: int, now: datetime) -> list[dict[str, Any]]:
    """The two events of one synthetic patient (no real person: the number is a 555 one)."""
    pid = patient_id(run, index)
    cancelled_at = (now - CANCELLED_BEFORE).isoformat()
    return [
        {
            "type": "PatientUpserted",
            "patient_id": pid,
            "payload": {
                "source": {"system": "json", "record_id": pid, "source_updated_at": cancelled_at},
                "given_name": "Ana",
                "preferred_language": "en",
                "time_zone": "America/Chicago",
                "contacts": [
                    {
                        "kind": "phone",
                        "value": f"+1555{index % 10_000_000:07d}",
                        "use": "mobile",
                        "rank": 1,
                    }
                ],
            },
        },
        {
            "type": "AppointmentCancelled",
            "patient_id": pid,
            "payload": {
                "source": {
                    "system": "json",
                    "record_id": f"{pid}-a",
                    "source_updated_at": cancelled_at,
                },
                "appointment_id": f"{pid}-a",
                "start": (now + timedelta(days=3)).isoformat(),
                "service_line": "skin_check",
                "provider_id": "dr-1",
                "location_id": "loc-1",
                "cancelled_by": "patient",
            },
        },
    ]


def submissions(
    run: str, patients: int, now: datetime, batch_events: int = 250, first: int = 0
) -> Iterator[tuple[list[int], dict[str, Any]]]:
    """(patient indexes, body) per submission; a patient's two events never straddle two."""
    per = max(1, batch_events // EVENTS_PER_PATIENT)
    for start in range(first, first + patients, per):
        indexes = list(range(start, min(start + per, first + patients)))
        events = [e for i in indexes for e in patient_events(run, i, now)]
        yield indexes, {"events": events}


@dataclass
class Posted:
    """What ingest accepted: counts, and when each patient's submission was accepted."""

    events: int = 0
    refused: int = 0
    first_sent: float | None = None  # perf_counter
    last_accepted: float | None = None
    accepted_at: dict[int, float] = field(default_factory=dict)  # patient index -> wall time
    errors: list[str] = field(default_factory=list)

    def rate(self) -> float:
        if self.first_sent is None or self.last_accepted is None:
            return 0.0
        span = self.last_accepted - self.first_sent
        return self.events / span if span > 0 else 0.0


async def _post(
    client: httpx.AsyncClient, indexes: Sequence[int], body: dict[str, Any], posted: Posted
) -> None:
    if posted.first_sent is None:
        posted.first_sent = time.perf_counter()
    for attempt in range(5):
        try:
            response = await client.post("/events", json=body)
        except httpx.TransportError as exc:
            error = type(exc).__name__
        else:
            if response.status_code in (200, 202):
                wall = time.time()
                posted.last_accepted = time.perf_counter()
                posted.events += len(body["events"])
                for i in indexes:
                    posted.accepted_at[i] = wall
                return
            error = f"HTTP {response.status_code}: {response.text[:200]}"
            if response.status_code < 500 and response.status_code != 429:
                break
        await asyncio.sleep(0.2 * (attempt + 1))
    posted.refused += len(body["events"])
    posted.errors.append(error)


def client_for(base_url: str, api_key: str, timeout: float = 60.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"X-API-Key": api_key},
        timeout=timeout,
        trust_env=False,
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
    )


async def burst(
    client: httpx.AsyncClient,
    bodies: Iterator[tuple[list[int], dict[str, Any]]],
    concurrency: int = 4,
) -> Posted:
    """Every submission, ``concurrency`` at a time, as fast as ingest accepts them."""
    posted = Posted()
    lock = asyncio.Lock()

    async def worker() -> None:
        while True:
            async with lock:
                item = next(bodies, None)
            if item is None:
                return
            await _post(client, item[0], item[1], posted)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return posted


async def steady(
    client: httpx.AsyncClient,
    bodies: Iterator[tuple[list[int], dict[str, Any]]],
    events_per_second: float,
    seconds: float,
    concurrency: int = 4,
) -> Posted:
    """Submissions on a fixed schedule (``events_per_second``) for ``seconds``; a late one is
    sent at once, never skipped, so a slow ingest shows as a lower accepted rate."""
    posted = Posted()
    start = time.perf_counter()
    sent_events = 0
    slots = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async def one(indexes: list[int], body: dict[str, Any]) -> None:
        try:
            await _post(client, indexes, body, posted)
        finally:
            slots.release()

    while time.perf_counter() - start < seconds:
        item = next(bodies, None)
        if item is None:
            break
        due = start + sent_events / events_per_second
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        task = asyncio.create_task(one(*item))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent_events += len(item[1]["events"])
    if tasks:
        await asyncio.gather(*tasks)
    return posted
