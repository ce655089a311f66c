"""The synthetic practice, made unreliable the way real integrations are.

- ``UnreliableFeed``: the EHR sends some records twice (a resend after a lost ACK, an
  interface engine replaying a queue) and out of order (a batch shuffled, a record held back to
  the next send); and, like a real EHR, it keeps resending what ingest could not take yet.
- ``replay_webhooks``: a provider delivers some patient replies again.
- ``send_bad_inputs``: deliberately bad messages, the only ones allowed to be dead-lettered.
- ``drive``: the simulation loop, resumed when a fault interrupts a tick.

Everything is drawn from one seeded ``random.Random``, so a run is repeatable in what it
injects (not in what the processes do in between).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from revisit.chaos.plan import Plan
from revisit.stack import StartedStack
from shared.clock import current_time, set_clock
from shared.events import new_event
from shared.events.common import EhrSource, SourceSystem
from shared.events.ehr import PatientUpserted
from shared.kafka import make_producer
from shared.topics import COMMANDS, EHR_EVENTS
from simulator.engine import Endpoints, Simulation
from simulator.feed import EhrFeed, FeedError, FeedReport
from simulator.model import Happening
from simulator.practice import build_practice
from simulator.runner import introduce_practice, open_calendar
from simulator.scheduling import SchedulingServer

log = logging.getLogger("chaos")


@dataclass
class Injected:
    """What the run did on purpose, for the report and the checker."""

    counts: dict[str, int] = field(default_factory=dict)
    bad_inputs: set[bytes] = field(default_factory=set)

    def add(self, kind: str, n: int = 1) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n


class UnreliableFeed(EhrFeed):
    def __init__(
        self,
        *args: Any,
        rng: random.Random,
        injected: Injected,
        duplicate_share: float,
        hold_back_share: float,
        **kw: Any,
    ) -> None:
        super().__init__(*args, attempts=8, backoff_seconds=0.5, **kw)
        self.rng = rng
        self.injected = injected
        self.duplicate_share = duplicate_share
        self.hold_back_share = hold_back_share
        self._sent: list[Happening] = []
        self._held: list[Happening] = []

    async def send(self, happenings: Sequence[Happening]) -> FeedReport:
        batch = [*self._held, *happenings]
        self._held = []
        if self.hold_back_share and len(batch) > 1:
            keep = [h for h in batch if self.rng.random() >= self.hold_back_share]
            self._held = [h for h in batch if h not in keep]
            self.injected.add("EHR records held back to a later send", len(self._held))
            batch = keep
        if len(batch) > 1:
            self.rng.shuffle(batch)
            self.injected.add("EHR sends reordered")
        if self._sent and self.duplicate_share:
            k = min(len(self._sent), max(1, round(len(batch) * self.duplicate_share)))
            again = self.rng.sample(self._sent[-500:], min(k, len(self._sent[-500:])))
            batch += again
            self.injected.add("EHR records sent twice", len(again))
        self._sent += list(happenings)
        return await self.keep_sending(batch)

    async def flush(self) -> None:
        held, self._held = self._held, []
        if held:
            await self.keep_sending(held)

    async def keep_sending(self, batch: list[Happening]) -> FeedReport:
        """A real EHR keeps what was not acknowledged and sends it again, however long."""
        deadline = time.monotonic() + 600
        while True:
            try:
                return await super().send(batch)
            except FeedError:
                if time.monotonic() > deadline:
                    raise
                self.injected.add("EHR resends after ingest was unavailable")
                await asyncio.sleep(2.0)


async def replay_webhooks(
    sim: Simulation, http: httpx.AsyncClient, messenger: str, rng: random.Random, n: int
) -> int:
    """Deliver some of the patients' replies again, under the provider id they came with."""
    played = list(sim.phones.played)
    replayed = 0
    for reply in rng.sample(played, min(n, len(played))):
        try:
            response = await http.post(f"{messenger}/sandbox/reply", json=reply)
        except httpx.HTTPError:
            continue
        replayed += int(response.status_code == 201)
    return replayed


RED_FLAG_WORDS = "the mole is bleeding and growing fast"


async def patients_speak_up(
    engine: AsyncEngine,
    http: httpx.AsyncClient,
    messenger: str,
    clinic_id: str,
    rng: random.Random,
    injected: Injected,
) -> None:
    """One patient who was texted answers STOP and another a red flag, now: a practice's rare
    moments made certain, so the opt-out and paging invariants are checked under faults."""
    async with engine.connect() as conn:
        reached = sorted(
            (
                await conn.execute(
                    text(
                        "SELECT DISTINCT patient_key FROM messenger.sandbox_messages "
                        "WHERE clinic_id = :c AND direction = 'outbound'"
                    ),
                    {"c": clinic_id},
                )
            ).scalars()
        )
    if len(reached) < 2:
        return
    for patient_key, body, kind in zip(
        rng.sample(reached, 2),
        ("STOP", RED_FLAG_WORDS),
        ("patients texting STOP on cue", "patients texting a red flag on cue"),
        strict=True,
    ):
        reply = {
            "clinic_id": clinic_id,
            "patient_key": patient_key,
            "body": body,
            "provider_message_id": f"chaos-{uuid.uuid4().hex}",
        }
        with contextlib.suppress(httpx.HTTPError):
            response = await http.post(f"{messenger}/sandbox/reply", json=reply)
            if response.status_code == 201:
                injected.add(kind)


async def send_bad_inputs(bootstrap: str, clinic_id: str, injected: Injected) -> None:
    """Malformed messages straight onto topics (an old client, a bug in another producer):
    each consumer must dead-letter them, with the original bytes, and carry on."""
    pk = f"{clinic_id}:chaos-bad-{uuid.uuid4().hex[:6]}"
    wire = json.loads(
        new_event(
            PatientUpserted(
                source=EhrSource(
                    system=SourceSystem.json,
                    record_id="chaos-bad",
                    source_updated_at=datetime.now().astimezone(),
                )
            ),
            clinic_id=clinic_id,
            patient_key=pk,
            occurred_at=datetime.now().astimezone(),
        ).to_bytes()
    )
    inputs = [
        (EHR_EVENTS.name, b"{not json: chaos " + uuid.uuid4().hex.encode()),
        (EHR_EVENTS.name, json.dumps({**wire, "type": "NoSuchEvent"}).encode()),
        (COMMANDS.name, json.dumps({**wire, "version": 99}).encode()),
    ]
    producer = make_producer(bootstrap, "revisit-chaos")
    await producer.start()
    try:
        for topic, value in inputs:
            await (await producer.send(topic, value=value, key=pk.encode()))
            injected.bad_inputs.add(value)
            injected.add("deliberately bad messages published")
    finally:
        await producer.stop()


async def drive(
    sim: Simulation, until: datetime, injected: Injected, more: Callable[[], bool]
) -> None:
    """``Simulation.run`` until ``until`` and on, half a day at a time, while ``more()`` (the
    faults are not all injected yet); resumed after a fault breaks a tick (what the feed was
    sending is kept and sent again; the clock never moves back)."""
    while True:
        try:
            await sim.run(until)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            injected.add("simulation ticks resumed after a fault")
            log.warning("simulation tick broke (%s); resuming", type(exc).__name__)
            await asyncio.sleep(2.0)
            continue
        if not more():
            return
        until = await sim.now() + timedelta(hours=12)


@dataclass
class Practice:
    sim: Simulation
    feed: UnreliableFeed
    server: SchedulingServer
    engine: AsyncEngine
    http: httpx.AsyncClient

    async def close(self) -> None:
        await self.sim.close()
        await self.server.stop()
        await self.http.aclose()
        await self.engine.dispose()


async def set_up_practice(
    started: StartedStack, ports: dict[str, int], plan: Plan, injected: Injected
) -> Practice:
    """The synthetic practice, as `revisit simulate` sets it up, with an unreliable feed."""
    base, creds = started.base, started.creds
    endpoints = Endpoints(
        ingest=base["ingest"],
        messenger=base["messenger"],
        sequencer=base["sequencer"],
        escalation=base["escalation"],
        mllp_host="127.0.0.1",
        mllp_port=ports["mllp"],
        api_key=creds["api_key"],
        token=creds["admin_token"],
    )
    engine = create_async_engine(
        started.backing.dsn, pool_size=3, pool_pre_ping=True, hide_parameters=True
    )
    now, _ = await current_time(engine)
    begin = now.replace(minute=0, second=0, microsecond=0)
    await set_clock(engine, begin, rate=0)
    practice = build_practice(plan.seed, plan.patients, begin)
    feed = UnreliableFeed(
        endpoints.ingest,
        endpoints.api_key,
        endpoints.mllp_host,
        endpoints.mllp_port,
        practice.clinic,
        practice.by_id,
        rng=random.Random(plan.seed + 1),
        injected=injected,
        duplicate_share=plan.duplicate_share,
        hold_back_share=plan.hold_back_share,
    )
    # Connection failures (a service being restarted) are retried by the transport.
    http = httpx.AsyncClient(
        trust_env=False,
        timeout=30.0,
        headers={"Authorization": f"Bearer {endpoints.token}"},
        transport=httpx.AsyncHTTPTransport(retries=6),
    )
    sim = Simulation(
        practice, endpoints, engine, speed_hours_per_second=plan.speed, http=http, feed=feed
    )
    server = SchedulingServer(
        open_calendar(practice),
        sim.booked,
        port=ports["scheduling"],
        token=creds["scheduling_token"],
    )
    await server.start()
    await introduce_practice(http, endpoints, practice)
    return Practice(sim, feed, server, engine, http)
