"""`revisit pilot`: rehearse a pilot on the synthetic practice, then write its report.

A stack of its own (fresh database, free ports, a temporary folder) with the simulator running
in this process: the practice is generated, a pilot is defined through the sequencer's API
exactly as a practice would (segment, cohort filters, launch group, holdout share, days), and
the playbook's weeks pass (``pilot_weeks.py``): week 1 defines (nobody is messaged), the team
launches at its end, reviews objections in week 3, closes enrolment, follows outcomes for
``--follow-days`` more and compares in week 4. The figures come from the metrics service
(pilot versus control and versus the previous weeks, with intervals) and the sequencer's review.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from revisit.embedded.ports import free_port
from revisit.stack import DEMO_CLINIC, DevError, StartedStack, start_stack
from revisit.supervisor import LineWriter, interrupt_on_stop_signals
from shared.config import SERVICE_NAMES
from shared.events.common import Segment
from shared.pilots import describe
from simulator.engine import Endpoints, SimStats
from simulator.pilot_setup import cohort_of, mix_and_size
from simulator.pilot_weeks import Rehearsal
from simulator.report import PilotRun, write_pilot_report
from simulator.runner import set_up

FOLLOW_DAYS = 14


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
    segment = Segment(args.segment)
    cohort = cohort_of(args)
    mix, variants, patients = mix_and_size(
        segment, cohort, args.patients, args.days, args.follow_days
    )
    setup = await set_up(
        database_url=started.backing.dsn,
        endpoints=endpoints,
        seed=args.seed,
        patients=patients,
        scheduling_port=ports["scheduling"],
        anchor_path=None,
        speed=args.speed,
        mix=mix,
        variants=variants,
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
    exclusive = not getattr(args, "not_exclusive", False)
    definition = {
        "pilot_id": pilot_id,
        "clinic_id": DEMO_CLINIC,
        "name": f"Rehearsal: {args.segment.replace('_', ' ')}",
        "segment": args.segment,
        "cohort": cohort.model_dump(mode="json", exclude_none=True),
        "cohort_size": args.patients,
        "holdout_share": args.holdout,
        "days": args.days,
        "exclusive": exclusive,
        "baseline_days": getattr(args, "baseline_days", 28),
    }
    headers = {"Authorization": f"Bearer {creds['admin_token']}"}
    out.line("pilot", f"{patients} synthetic patients; cohort: {describe(segment, cohort)}")
    try:
        async with httpx.AsyncClient(trust_env=False, headers=headers, timeout=60) as client:
            team = Rehearsal(
                client, base, DEMO_CLINIC, pilot_id, sim, lambda s: out.line("pilot", s)
            )
            start = await team.run(definition, args.days, args.follow_days)
            end = await sim.now()
            barriers = await _barriers(client, base["metrics"], pilot_id)
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
        exclusive=exclusive,
    )
    record = {k: v for k, v in team.record.items() if k not in ("report", "review")}
    return write_pilot_report(
        Path(args.out),
        run=run,
        pilot=team.record["report"],
        review=team.record["review"],
        barriers=barriers,
        objections=team.record.get("week3"),
        record={**record, "practice_patients": patients},
    )


async def _barriers(client: httpx.AsyncClient, metrics: str, pilot_id: str) -> dict[str, Any]:
    response = await client.get(
        f"{metrics}/reports/barriers",
        params={"clinic_id": DEMO_CLINIC, "pilot_id": pilot_id, "group_by": "week"},
    )
    if response.status_code >= 400:
        raise DevError(f"the barriers report answered {response.status_code}")
    found: dict[str, Any] = response.json()
    return found


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
