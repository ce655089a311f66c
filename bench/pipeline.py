"""The whole pipeline under load: every service as a process, fed by a load generator.

    python -m bench.pipeline [--patients 20000,100000] [--steady-seconds 600]
                             [--steady-rate EV/S] [--skip-ceilings] [--backfill-years 5]
                             [--backfill-providers 20] [--skip-backfill] [--profile DIR]

The stack is what ``revisit dev --no-simulator`` starts (embedded Postgres and broker, the six
services as supervised processes, sandbox providers), on free ports in a temporary folder. The
controlled clock is frozen at a weekday 15:00 UTC (09:00 for the Chicago patients), so every
message may go at once. Then:

1. a warm-up (every consumer group joined, every code path run once);
2. a burst per ``--patients`` size: each patient a PatientUpserted (mobile number) and an
   AppointmentCancelled already due, posted to ``POST /events`` 250 events at a time by four
   clients; then wait until every patient's outcome is settled (sent, or blocked for good);
3. a steady rate (half the best burst's end-to-end rate unless ``--steady-rate``) for
   ``--steady-seconds``: consumer lag per group over time, latencies, CPU per service;
4. the ceilings on the same broker and database: raw aiokafka consume -> produce and a raw
   asyncpg batch insert, with the ratios;
5. the onboarding backfill of a synthetic practice's history (``bench.pipeline_backfill``).

See bench/README.md for every line it prints.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench._harness import detail, load_average, machine_line, say
from bench.pipeline_phases import Stack, burst_phase, ceilings_phase, steady_phase, warm_up
from revisit.stack import DevError, start_stack
from revisit.supervisor import LineWriter, interrupt_on_stop_signals

# A Tuesday, 15:00 UTC: 09:00 in Chicago, inside every patient's allowed hours.
DAYTIME = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--patients", default="20000,100000", help="burst sizes, comma-separated")
    parser.add_argument("--steady-seconds", type=float, default=600.0)
    parser.add_argument("--steady-rate", type=float, default=0.0, help="EHR events/s")
    parser.add_argument("--skip-ceilings", action="store_true")
    parser.add_argument("--skip-backfill", action="store_true")
    parser.add_argument("--backfill-years", type=int, default=5)
    parser.add_argument("--backfill-providers", type=int, default=20)
    parser.add_argument(
        "--backfill-patients", type=int, default=0, help="default: 500 per provider"
    )
    parser.add_argument("--profile", default="", help="folder for py-spy profiles of each burst")
    parser.add_argument("--settle-stall", type=float, default=120.0, help="seconds")
    return parser.parse_args(argv)


def _start(data_dir: Path, stack: contextlib.ExitStack, out: LineWriter) -> Stack:
    from revisit.dev import service_specs
    from revisit.embedded.ports import free_port
    from shared.config import SERVICE_NAMES

    ports = {name: free_port() for name in [*SERVICE_NAMES, "mllp", "pg", "kafka"]}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "REVISIT_JWT_SECRET"}
    }
    env |= {"REVISIT_PG_PORT": str(ports["pg"]), "REVISIT_KAFKA_PORT": str(ports["kafka"])}
    plan = {name: (port, "") for name, port in ports.items()}
    started = start_stack(
        env, data_dir, stack, out, lambda common: service_specs(plan, common), ports
    )
    return Stack(started, data_dir)


async def run(stack: Stack, args: argparse.Namespace) -> None:
    await stack.open(DAYTIME)
    try:
        await warm_up(stack)
        best = 0.0
        for size in [int(s) for s in args.patients.split(",") if s.strip()]:
            result = await burst_phase(stack, size, args)
            best = max(best, result.end_to_end_rate)
        if args.steady_seconds > 0:
            steady_rate = args.steady_rate or best / 2 or 200.0
            await steady_phase(stack, steady_rate, args.steady_seconds, args)
        if not args.skip_ceilings:
            await ceilings_phase(stack, best)
        if not args.skip_backfill:
            from bench.pipeline_backfill import backfill_phase

            await backfill_phase(
                stack, args.backfill_years, args.backfill_providers, args.backfill_patients
            )
    finally:
        await stack.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    say(machine_line("pipeline"))
    detail(f"load average at start: {load_average()}")
    restore = interrupt_on_stop_signals()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="revisit-bench-pipeline-") as tmp,
            contextlib.ExitStack() as exits,
        ):
            log = exits.enter_context((Path(tmp) / "stack.log").open("w"))
            detail(f"starting the stack (services' logs: {tmp}/stack.log)")
            stack = _start(Path(tmp), exits, LineWriter(log))
            asyncio.run(run(stack, args))
        return 0
    except KeyboardInterrupt:
        say("# interrupted")
        return 130
    except DevError as exc:
        say(f"# the stack did not start: {exc}")
        return 1
    finally:
        restore()


if __name__ == "__main__":
    raise SystemExit(main())
