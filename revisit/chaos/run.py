"""`revisit chaos` (what `make chaos` runs): the simulated practice under faults, then the checker.

A stack of its own, as `revisit dev` starts it (embedded PostgreSQL and broker, the six
services under the dev supervisor, free ports, a temporary folder), with the synthetic practice
in this process. While the practice lives its days, a seeded script, bounded in time, injects
faults one at a time and waits for every service to be ready again: kill -9 of each service in
turn (mid-batch, several rounds), the broker frozen, PostgreSQL restarted and frozen. All along,
the EHR sends some records twice and out of order, some patient replies are delivered again,
and a few deliberately bad messages are published. Afterwards the pipeline drains, and
``revisit.chaos.checker`` reads what every service recorded and prints one line per invariant.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from revisit.chaos.checker import check, report
from revisit.chaos.faults import Fault, Injector, poll_supervisor
from revisit.chaos.plan import FULL, SHORT, Plan, short_script
from revisit.chaos.practice import (
    Injected,
    drive,
    patients_speak_up,
    replay_webhooks,
    send_bad_inputs,
    set_up_practice,
)
from revisit.chaos.state import read_state
from revisit.embedded.broker import EmbeddedBroker
from revisit.embedded.ports import free_port
from revisit.embedded.postgres import EmbeddedPostgres
from revisit.stack import DEMO_CLINIC, StartedStack, start_stack
from revisit.supervisor import LineWriter, RestartPolicy, interrupt_on_stop_signals
from shared.clock import current_time
from shared.config import SERVICE_NAMES
from shared.db import plain_dsn
from simulator.settle import Settler

Say = Callable[[str], None]


@dataclass
class Outcome:
    lines: list[str]
    violations: int


def _start(
    run_dir: Path, stack: contextlib.ExitStack
) -> tuple[StartedStack, EmbeddedPostgres, EmbeddedBroker, dict[str, int]]:
    """Postgres, the broker and the supervised services, from this (main) thread: the children's
    parent-death signal is tied to the thread that starts them."""
    pg = EmbeddedPostgres(run_dir / "pg", fast=True, log_path=run_dir / "postgres.log")
    stack.callback(pg.stop, 5.0)
    broker = EmbeddedBroker(log_path=run_dir / "broker.log")
    stack.callback(broker.stop, 3.0)
    pg.start(60.0)
    broker.start(30.0)
    ports = {name: free_port() for name in [*SERVICE_NAMES, "mllp", "scheduling"]}
    env = {"DATABASE_URL": pg.dsn, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap}
    # Ambiguous sends are reconciled within the run, not a minute later.
    os.environ["REVISIT_MESSENGER_LEASE_SECONDS"] = "15"
    log_file = stack.enter_context((run_dir / "stack.log").open("w"))
    from revisit.dev import service_specs

    plan_ports = {name: (port, "") for name, port in ports.items()}
    scheduling = f"http://127.0.0.1:{ports['scheduling']}/fhir"
    started = start_stack(
        env,
        run_dir,
        stack,
        LineWriter(log_file),
        lambda common: service_specs(plan_ports, common, scheduling_url=scheduling),
        ports,
        RestartPolicy(max_restarts=20, backoff=(0.5, 1.0, 2.0), stable_after=20.0),
    )
    return started, pg, broker, ports


async def _faults_and_check(
    plan: Plan,
    script: list[Fault],
    started: StartedStack,
    pg: EmbeddedPostgres,
    broker: EmbeddedBroker,
    ports: dict[str, int],
    say: Say,
    t0: float,
) -> Outcome:
    injected = Injected()
    counts: dict[str, int] = {}
    say(f"setting up the practice ({plan.patients} patients)")
    practice = await set_up_practice(started, ports, plan, injected)
    sim = practice.sim
    stop = asyncio.Event()
    failed: list[str] = []
    watcher = asyncio.create_task(poll_supervisor(started.sup, stop, failed.append))
    injector = Injector(started.sup, pg, broker, practice.engine, started.base, say)
    rng = random.Random(plan.seed + 2)
    try:
        begin = await sim.now()
        until = begin + timedelta(days=plan.days)
        say(f"simulating {plan.days:g} days from {begin:%Y-%m-%d %H:%M} UTC")
        scripted = asyncio.Event()  # the practice lives on until every fault was injected
        simulation = asyncio.create_task(
            drive(sim, until, injected, more=lambda: not scripted.is_set())
        )
        await asyncio.sleep(plan.gap_s)
        await send_bad_inputs(started.backing.bootstrap, DEMO_CLINIC, injected)
        for fault in script:
            if simulation.done():
                simulation.result()  # a practice that gave up says why
            await injector.inject(fault)
            counts[fault.label] = counts.get(fault.label, 0) + 1
            replayed = await replay_webhooks(
                sim, practice.http, started.base["messenger"], rng, plan.replays_per_round
            )
            injected.add("patient replies delivered twice", replayed)
            if rng.random() < plan.speak_up_share:
                await patients_speak_up(
                    practice.engine,
                    practice.http,
                    started.base["messenger"],
                    DEMO_CLINIC,
                    rng,
                    injected,
                )
            await asyncio.sleep(plan.gap_s)
        await injector.wait_ready()  # the last kills' services are back before the end
        await send_bad_inputs(started.backing.bootstrap, DEMO_CLINIC, injected)
        scripted.set()
        await simulation
        await practice.feed.flush()
        say(f"simulated days done ({sim.stats.messages_received} messages); draining")
        await _drain(practice.engine, say)
        state = await read_state(
            plain_dsn(started.backing.dsn),
            started.backing.bootstrap,
            started.base["sequencer"],
            started.creds["admin_token"],
            injected.bad_inputs,
        )
    finally:
        stop.set()
        await watcher
        await practice.close()
    if failed:
        raise RuntimeError(f"the stack gave up: {failed[0]}")
    results = check(state)
    lines = report(results, {**counts, **injected.counts})
    for result in results:
        lines += [f"  {result.name}: {v}" for v in result.violations[:20]]
    stats = sim.stats
    lines.append(
        f"chaos_PRACTICE: {stats.records_sent} EHR records, {stats.messages_received} messages "
        f"to patients, {stats.replies_sent} replies, {stats.bookings} bookings, "
        f"{stats.stops} STOPs"
    )
    lines.append(f"chaos_DURATION: {time.monotonic() - t0:.0f} s")
    return Outcome(lines, sum(len(r.violations) for r in results))


async def _drain(engine: AsyncEngine, say: Say, within: float = 240.0) -> None:
    """Until nothing is in flight: outboxes empty, no due timer, the inboxes still, and no send
    in doubt (the leases of sends a kill interrupted run out and are reconciled)."""
    settler = Settler(engine)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            now, _ = await current_time(engine)
            if await settler.settle(now, timeout_s=30.0):
                async with engine.connect() as conn:
                    doubt = (
                        await conn.execute(
                            text(
                                "SELECT count(*) FROM messenger.outgoing WHERE status = 'sending' "
                                "OR (status = 'queued' AND available_at <= now())"
                            )
                        )
                    ).scalar()
                if not doubt:
                    return
        await asyncio.sleep(2.0)
    say("the pipeline did not drain in time; checking what is there")


def main(args: argparse.Namespace) -> int:
    from shared.logging import configure_logging

    plan = dataclasses.replace(SHORT if args.short else FULL, seed=args.seed)
    script = short_script() if args.short else plan.script()
    out = LineWriter()
    t0 = time.monotonic()

    def say(text: str) -> None:
        out.line("chaos", f"[{time.monotonic() - t0:4.0f} s] {text}")

    run_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="revisit-chaos-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    say(f"{len(script)} faults planned (seed {plan.seed}); run folder {run_dir}")
    restore = interrupt_on_stop_signals()
    try:
        with contextlib.ExitStack() as stack:
            # This process's own log (the practice, the feed) beside the services'.
            configure_logging(
                "chaos", stream=stack.enter_context((run_dir / "chaos.log").open("w"))
            )
            logging.getLogger("httpx").setLevel(logging.WARNING)
            started, pg, broker, ports = _start(run_dir, stack)
            say(f"stack ready; service logs in {run_dir / 'stack.log'}")
            outcome = asyncio.run(
                _faults_and_check(plan, script, started, pg, broker, ports, say, t0)
            )
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    finally:
        restore()
    for line in outcome.lines:
        print(line)
    (run_dir / "chaos-report.txt").write_text("\n".join(outcome.lines) + "\n")
    sys.stdout.flush()
    return 1 if outcome.violations else 0
