"""`revisit pilot`: rehearse a pilot on the synthetic practice, then write its report.

A stack of its own (fresh database, free ports, a temporary folder) with the simulator running
in this process: the practice is generated, a pilot is defined and started through the
sequencer's API exactly as a practice would (cohort size, holdout share, days), simulated time
runs for the pilot's days, enrolment closes, and outcomes are followed for ``--follow-days``
more (visits booked late in the pilot happen after it). The figures come from the metrics
service (pilot versus control, with intervals) and the sequencer's weekly review.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from revisit.embedded.ports import free_port
from revisit.stack import DEMO_CLINIC, DevError, StartedStack, start_stack
from revisit.supervisor import LineWriter, interrupt_on_stop_signals
from shared.config import SERVICE_NAMES
from shared.events.common import Segment
from simulator.engine import Endpoints, SimStats
from simulator.model import Journey
from simulator.practice import DEFAULT_MIX
from simulator.report import PilotRun, write_pilot_report
from simulator.runner import set_up

FOLLOW_DAYS = 14
# The practice is sized, and its journeys weighted, so the piloted segment can fill the cohort
# within the pilot's days: about 40% of patients have that story, and of those about half
# come due inside a month of a 44-day horizon.
PATIENTS_PER_COHORT_SEAT = 5.5
SEGMENT_SHARE = 0.4
JOURNEYS_OF = {
    Segment.follow_up_not_booked: (Journey.follow_up,),
    Segment.series_incomplete: (Journey.series,),
    Segment.cancelled_not_rescheduled: (Journey.canceller,),
    Segment.cosmetic_maintenance_due: (Journey.cosmetic,),
    Segment.chronic_review_overdue: (Journey.surveillance, Journey.chronic),
    Segment.question_no_review: (Journey.question,),
    Segment.lapsed_patient: (Journey.lapsed,),
    Segment.consult_no_treatment: (Journey.consult,),
}


def pilot_mix(segment: Segment) -> dict[Journey, float]:
    """The default mix of journeys, with the piloted segment's stories SEGMENT_SHARE of it."""
    ours = JOURNEYS_OF[segment]
    theirs = sum(w for j, w in DEFAULT_MIX.items() if j in ours)
    rest = sum(w for j, w in DEFAULT_MIX.items() if j not in ours)
    return {
        j: (SEGMENT_SHARE * w / theirs if j in ours else (1 - SEGMENT_SHARE) * w / rest)
        for j, w in DEFAULT_MIX.items()
    }


def _free_ports() -> dict[str, int]:
    names = [*SERVICE_NAMES, "mllp", "pg", "kafka", "scheduling"]
    return {name: free_port() for name in names}


def _env(ports: dict[str, int]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "REVISIT_JWT_SECRET"}
    }
    env["REVISIT_PG_PORT"] = str(ports["pg"])
    env["REVISIT_KAFKA_PORT"] = str(ports["kafka"])
    return env


def _start(
    args: argparse.Namespace, data_dir: Path, stack: contextlib.ExitStack, out: LineWriter
) -> tuple[StartedStack, dict[str, int]]:
    from revisit.dev import service_specs

    ports = _free_ports()
    plan = {name: (port, "") for name, port in ports.items()}
    scheduling = f"http://127.0.0.1:{ports['scheduling']}/fhir"
    started = start_stack(
        _env(ports),
        data_dir,
        stack,
        out,
        lambda common: service_specs(plan, common, scheduling_url=scheduling),
        ports,
    )
    return started, ports


async def _api(client: httpx.AsyncClient, method: str, url: str, **kw: Any) -> Any:
    response = await client.request(method, url, **kw)
    if response.status_code >= 400:
        raise DevError(f"{method} {url} answered {response.status_code}: {response.text[:300]}")
    return response.json()


async def rehearse(
    args: argparse.Namespace, started: StartedStack, ports: dict[str, int], out: LineWriter
) -> Path:
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
    setup = await set_up(
        database_url=started.backing.dsn,
        endpoints=endpoints,
        seed=args.seed,
        patients=math.ceil(args.patients * PATIENTS_PER_COHORT_SEAT),
        scheduling_port=ports["scheduling"],
        anchor_path=None,
        speed=args.speed,
        mix=pilot_mix(Segment(args.segment)),
        horizon_days=args.days + args.follow_days,
        scheduling_token=creds["scheduling_token"],
        start=args.start,
    )
    sim = setup.simulation
    last = [0.0]

    def progress(now: datetime, stats: SimStats) -> None:
        failure = started.sup.poll()
        if failure:
            raise DevError(failure)
        if time.monotonic() - last[0] > 5:
            last[0] = time.monotonic()
            out.line(
                "pilot",
                f"{now:%Y-%m-%d %H:%M} UTC: {stats.messages_received} messages, "
                f"{stats.replies_sent} replies, {stats.bookings} bookings by text",
            )

    sim.on_tick = progress
    pilot_id = f"{args.segment.replace('_', '-')[:40]}-seed{args.seed}"
    headers = {"Authorization": f"Bearer {creds['admin_token']}"}
    try:
        async with httpx.AsyncClient(trust_env=False, headers=headers, timeout=60) as client:
            seq = base["sequencer"]
            await _api(
                client,
                "POST",
                f"{seq}/pilots",
                json={
                    "pilot_id": pilot_id,
                    "clinic_id": DEMO_CLINIC,
                    "name": f"Rehearsal: {args.segment.replace('_', ' ')}",
                    "segment": args.segment,
                    "cohort_size": args.patients,
                    "holdout_share": args.holdout,
                    "days": args.days,
                },
            )
            await _api(client, "POST", f"{seq}/pilots/{pilot_id}/start")
            start = await sim.now()
            out.line("pilot", f"pilot {pilot_id} started on simulated {start:%Y-%m-%d}")
            await sim.run(until=start + timedelta(days=args.days))
            await _api(client, "POST", f"{seq}/pilots/{pilot_id}/close")
            end = await sim.now()
            out.line("pilot", f"enrolment closed; following outcomes for {args.follow_days} days")
            await sim.run(until=end + timedelta(days=args.follow_days))
            metrics = base["metrics"]
            pilot = await _api(client, "GET", f"{metrics}/reports/pilots/{pilot_id}")
            review = await _api(client, "GET", f"{seq}/pilots/{pilot_id}/review")
            barriers = await _api(
                client,
                "GET",
                f"{metrics}/reports/barriers",
                params={"clinic_id": DEMO_CLINIC, "pilot_id": pilot_id, "group_by": "week"},
            )
    finally:
        await setup.close()
    run = PilotRun(
        segment=args.segment,
        patients=args.patients,
        holdout_share=args.holdout,
        days=args.days,
        seed=args.seed,
        clinic_name=setup.practice.clinic.name,
        simulated_start=start.date(),
        simulated_end=end.date(),
        generated_at=datetime.now(UTC),
    )
    return write_pilot_report(
        Path(args.out), run=run, pilot=pilot, review=review, barriers=barriers
    )


def main(args: argparse.Namespace) -> int:
    out = LineWriter()
    restore = interrupt_on_stop_signals()
    args.follow_days = getattr(args, "follow_days", FOLLOW_DAYS)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="revisit-pilot-") as tmp,
            contextlib.ExitStack() as stack,
        ):
            # Service logs go to a file: the terminal shows the pilot's progress.
            log = stack.enter_context((Path(tmp) / "stack.log").open("w"))
            started, ports = _start(args, Path(tmp), stack, LineWriter(log))
            out.line("pilot", f"stack ready; service logs in {tmp}/stack.log")
            page = asyncio.run(rehearse(args, started, ports, out))
        out.line("pilot", f"report written: {page}")
        return 0
    except KeyboardInterrupt:
        out.line("pilot", "interrupted; nothing written")
        return 130
    except DevError as exc:
        out.line("pilot", str(exc), loud=True)
        return 1
    finally:
        restore()
