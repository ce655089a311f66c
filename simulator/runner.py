"""`revisit simulate`: the synthetic practice as a process beside a running stack.

``revisit dev`` starts it as one more supervised child (unless ``--no-simulator``); ``revisit
pilot`` runs the same ``Simulation`` in its own process. The practice is anchored in
``<data dir>/simulator.json`` (seed, size, the simulated day it was generated for), so a
restart replays the same practice instead of inventing a second one under the same ids.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from revisit.stack import load_credentials, readiness_error
from shared.clock import current_time, set_clock
from simulator.calendar import Calendar
from simulator.engine import Endpoints, SimStats, Simulation
from simulator.model import AppointmentRecord, AppointmentStatus, Journey, Practice
from simulator.practice import build_practice
from simulator.scheduling import SchedulingServer

log = logging.getLogger("simulator")


@dataclass(frozen=True)
class Anchor:
    seed: int
    patients: int
    start: datetime


def load_anchor(path: Path, seed: int, patients: int) -> Anchor | None:
    """The practice generated before for this seed and size, if any."""
    try:
        raw = json.loads(path.read_text())
        anchor = Anchor(
            int(raw["seed"]), int(raw["patients"]), datetime.fromisoformat(raw["start"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return anchor if (anchor.seed, anchor.patients) == (seed, patients) else None


def save_anchor(path: Path, anchor: Anchor) -> None:
    path.write_text(
        json.dumps(
            {"seed": anchor.seed, "patients": anchor.patients, "start": anchor.start.isoformat()}
        )
    )


def open_calendar(practice: Practice) -> Calendar:
    """The bookable time, minus what the EHR already has on the books."""
    calendar = Calendar(practice.clinic)
    for happening in practice.timeline:
        record = happening.record
        if (
            isinstance(record, AppointmentRecord)
            and record.status == AppointmentStatus.booked
            and record.start >= practice.start
        ):
            calendar.reserve(record.provider_id, record.start, record.minutes)
    return calendar


async def introduce_practice(
    client: httpx.AsyncClient, endpoints: Endpoints, practice: Practice
) -> None:
    """What a practice sets up on its first day: its zone and state for the allowed hours
    (sequencer), and how it names itself and its providers in messages (messenger)."""
    clinic = practice.clinic
    messenger = endpoints.messenger
    rules = {"time_zone": clinic.time_zone, "state": clinic.state}
    response = await client.put(
        f"{endpoints.sequencer}/clinics/{clinic.clinic_id}/rules", json=rules
    )
    response.raise_for_status()
    body = {
        "name": clinic.name[:40],
        "phone": "(512) 555-0100",
        "time_zone": clinic.time_zone,
        # Its online booking page: messages carry a tracked link to it.
        "booking_url": f"https://{clinic.clinic_id}.example/book",
    }
    response = await client.put(f"{messenger}/practices/{clinic.clinic_id}", json=body)
    response.raise_for_status()
    for provider in clinic.providers:
        response = await client.put(
            f"{messenger}/practices/{clinic.clinic_id}/providers/{provider.provider_id}",
            json={"display_name": provider.name},
        )
        response.raise_for_status()


@dataclass
class SimulatorSetup:
    practice: Practice
    simulation: Simulation
    server: SchedulingServer
    engine: AsyncEngine

    async def close(self) -> None:
        await self.simulation.close()
        await self.server.stop()
        await self.engine.dispose()


async def set_up(
    *,
    database_url: str,
    endpoints: Endpoints,
    seed: int,
    patients: int,
    scheduling_port: int,
    anchor_path: Path | None,
    speed: float,
    mix: Mapping[Journey, float] | None = None,
    variants: Mapping[Journey, tuple[tuple[str, int], ...]] | None = None,
    horizon_days: int = 90,
    scheduling_token: str = "",
    start: datetime | None = None,
) -> SimulatorSetup:
    engine = create_async_engine(database_url, pool_size=2, hide_parameters=True)
    now, _ = await current_time(engine)
    anchor = load_anchor(anchor_path, seed, patients) if anchor_path else None
    if anchor is None:
        # A new practice starts at ``start``, else at the top of the hour; the clock is put
        # there and frozen between ticks, so two runs of one seed and start see the same times.
        begin = start or now.replace(minute=0, second=0, microsecond=0)
        anchor = Anchor(seed, patients, begin)
        if anchor_path:
            save_anchor(anchor_path, anchor)
        now = begin
    # Restarted: the clock carries on from where it is (it never runs backwards), frozen.
    await set_clock(engine, max(now, anchor.start), rate=0)
    practice = build_practice(
        seed, patients, anchor.start, mix=mix, variants=variants, horizon_days=horizon_days
    )
    calendar = open_calendar(practice)
    simulation = Simulation(practice, endpoints, engine, speed_hours_per_second=speed)
    server = SchedulingServer(
        calendar, simulation.booked, port=scheduling_port, token=scheduling_token
    )
    await server.start()
    async with httpx.AsyncClient(
        trust_env=False, headers={"Authorization": f"Bearer {endpoints.token}"}, timeout=30
    ) as client:
        await introduce_practice(client, endpoints, practice)
    log.info(
        "synthetic practice ready: %d patients, %d EHR records, seed %d",
        len(practice.patients),
        len(practice.timeline),
        seed,
    )
    return SimulatorSetup(practice, simulation, server, engine)


STATUS_FILE = "simulator-status.json"


def status_of(now: datetime, stats: SimStats) -> dict[str, Any]:
    """What the live view shows of the simulation (counts only, no patient)."""
    sent, total = stats.history
    return {
        "sim_now": now.isoformat(),
        "loading_history": stats.ticks == 0,
        "history_sent": sent,
        "history_total": total,
        "ticks": stats.ticks,
        "busy_ticks": stats.busy_ticks,
        "records_sent": stats.records_sent,
        "messages_received": stats.messages_received,
        "replies_sent": stats.replies_sent,
        "bookings": stats.bookings,
        "stops": stats.stops,
        "cases_taken": stats.cases_taken,
        "cases_closed": stats.cases_closed,
    }


def _progress_reporter(
    status_path: Path, every_s: float = 10.0
) -> Callable[[datetime, SimStats], None]:
    """A log line every few seconds, and the status file the live view reads, every tick."""
    last = [0.0]

    def progress(now: datetime, stats: SimStats) -> None:
        status = status_of(now, stats)
        tmp = status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        tmp.replace(status_path)
        if time.monotonic() - last[0] < every_s:
            return
        last[0] = time.monotonic()
        log.info("simulated %s", now.isoformat(timespec="minutes"), extra=status)

    return progress


async def wait_for_stack(endpoints: Endpoints, timeout_s: float = 120.0) -> None:
    """The simulator starts beside the services: it waits for them rather than failing."""
    urls = [f"{u}/readyz" for u in (endpoints.ingest, endpoints.messenger, endpoints.sequencer)]
    deadline = time.monotonic() + timeout_s
    for url in urls:
        while (error := await asyncio.to_thread(readiness_error, url)) is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {timeout_s:g} s: {url}: {error}")
            await asyncio.sleep(0.5)


async def _main(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir)
    creds = load_credentials(data_dir / "dev-credentials.json")
    if not creds.get("api_key"):
        raise RuntimeError(f"no dev credentials in {data_dir}: start it with `revisit dev`")
    endpoints = Endpoints(
        ingest=args.ingest_url,
        messenger=args.messenger_url,
        sequencer=args.sequencer_url,
        escalation=args.escalation_url,
        mllp_host="127.0.0.1",
        mllp_port=args.mllp_port,
        api_key=creds["api_key"],
        token=creds["admin_token"],
    )
    database_url = os.environ.get("DATABASE_URL") or creds["database_url"]
    await wait_for_stack(endpoints)
    setup = await set_up(
        database_url=database_url,
        endpoints=endpoints,
        seed=args.seed,
        patients=args.patients,
        scheduling_port=args.port,
        anchor_path=data_dir / "simulator.json",
        speed=args.speed,
        scheduling_token=creds.get("scheduling_token", ""),
        start=args.start,
    )
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel if task else (lambda: None))
    setup.simulation.on_tick = _progress_reporter(data_dir / STATUS_FILE)
    until = None
    if args.days:
        until = (await setup.simulation.now()) + timedelta(days=args.days)
    try:
        await setup.simulation.run(until)
        log.info("simulated %s days; holding the clock", args.days)
        await asyncio.Event().wait()  # keep serving the calendar until stopped
    except asyncio.CancelledError:
        pass
    finally:
        with contextlib.suppress(Exception):
            await setup.close()
    return 0


def main(args: argparse.Namespace) -> int:
    from shared.logging import configure_logging

    configure_logging("simulator")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request drowns the rest
    return asyncio.run(_main(args))
