"""The `revisit` command: argument parsing and dispatch only.

Every handler imports what it needs inside itself, so `revisit --help` loads nothing heavy.
Exit codes: 0 success, 1 the command failed, 2 wrong usage or missing configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from revisit.audit_cli import AuditUsageError
from revisit.backfill_cli import add_backfill_command


class UsageError(Exception):
    """Missing configuration, reported like an argparse error (exit 2)."""


def _required_env(name: str, hint: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise UsageError(f"{name} is not set; {hint}")
    return value


def _dev(args: argparse.Namespace) -> int:
    from revisit import dev

    return dev.main(args)


def _instant(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO date and time") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} needs an offset, e.g. 2026-12-01T08:00Z")
    return at


def _practice_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=7, help="the same seed, the same practice")
    parser.add_argument("--patients", type=int, default=2000, help="practice size (default 2000)")
    parser.add_argument(
        "--speed",
        type=float,
        default=2.0,
        help="at most this many simulated hours per real second (default 2: a day in 12 s)",
    )
    parser.add_argument("--days", type=float, default=0, help="stop the clock after N days")
    parser.add_argument(
        "--start",
        type=_instant,
        help="the simulated moment a new practice starts (ISO, with offset; default: this hour)",
    )


def _simulate(args: argparse.Namespace) -> int:
    from simulator import runner

    return runner.main(args)


def _pilot(args: argparse.Namespace) -> int:
    from shared.events.common import Segment
    from simulator import pilot
    from simulator.pilot_setup import CohortError, cohort_of, pilot_variants

    if args.segment not in {s.value for s in Segment}:
        raise UsageError(f"unknown --segment; one of: {', '.join(s.value for s in Segment)}")
    if not 0 < args.holdout < 1 or args.patients < 10 or args.days < 8:
        # Week 1 only defines the pilot: it needs days after it to launch in.
        raise UsageError("--holdout must be in (0, 1), --patients >= 10 and --days >= 8")
    try:
        pilot_variants(Segment(args.segment), cohort_of(args))
    except CohortError as exc:
        raise UsageError(str(exc)) from None
    return pilot.main(args)


def _chaos(args: argparse.Namespace) -> int:
    from revisit.chaos import run

    return run.main(args)


def _service(args: argparse.Namespace) -> int:
    from shared.config import SERVICE_NAMES

    names = (*SERVICE_NAMES, "console")
    if args.name not in names:
        raise UsageError(f"unknown service {args.name!r}; one of: {', '.join(names)}")
    from revisit.serve import run_service

    run_service(args.name)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from revisit.migrate import migrate_all

    url = _required_env("DATABASE_URL", "e.g. postgresql+asyncpg://user:pw@host:5432/revisit")
    asyncio.run(migrate_all(url))
    return 0


def _clock_database_url(data_dir: str) -> str:
    """$DATABASE_URL, else the embedded dev stack's (recorded in its credentials file)."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url
    import json
    from pathlib import Path

    try:
        recorded = json.loads((Path(data_dir) / "dev-credentials.json").read_text())
    except (OSError, ValueError):
        recorded = {}
    url = str(recorded.get("database_url", ""))
    if not url:
        raise UsageError("DATABASE_URL is not set and no running `revisit dev` stack was found")
    return url


def _clock(args: argparse.Namespace) -> int:
    from datetime import datetime, timedelta

    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.clock import advance_clock, current_time, set_clock

    async def run() -> str:
        engine = create_async_engine(_clock_database_url(args.data_dir), hide_parameters=True)
        try:
            if args.action == "advance":
                delta = timedelta(days=args.days, hours=args.hours, minutes=args.minutes)
                return f"now {(await advance_clock(engine, delta)).isoformat()}"
            if args.action == "set":
                at = datetime.fromisoformat(args.at)
                await set_clock(engine, at, rate=args.rate)
                return f"now {at.isoformat()} at {args.rate:g}x"
            now, rate = await current_time(engine)
            return f"now {now.isoformat()} at {rate:g}x"
        finally:
            await engine.dispose()

    print(asyncio.run(run()))
    return 0


def _topics(args: argparse.Namespace) -> int:
    from shared.config import KafkaSettings
    from shared.kafka import ensure_topics

    _required_env("KAFKA_BOOTSTRAP_SERVERS", "e.g. 127.0.0.1:9092")
    kafka = KafkaSettings()
    try:
        kafka.refuse_plaintext_in(os.environ.get("REVISIT_PROFILE", "dev"))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    asyncio.run(
        ensure_topics(
            kafka,
            kafka.kafka_partitions,
            kafka.kafka_replication_factor,
            dlq_retention_days=kafka.kafka_dlq_retention_days,
        )
    )
    return 0


def _token(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from shared.auth import issue_staff_token
    from shared.config import AuthSettings

    if os.environ.get("REVISIT_PROFILE", "dev") == "production":
        raise UsageError("HS256 staff tokens are for the dev stack; production staff sign in")
    _required_env("REVISIT_JWT_SECRET", "tokens are signed with the services' secret")
    if args.ttl_hours <= 0:
        raise UsageError("--ttl-hours must be positive")
    auth = AuthSettings()  # same issuer and audience the services verify against
    clinics: list[str] | Literal["*"] = "*" if args.all_clinics else list(args.clinic)
    try:
        token = issue_staff_token(
            auth.revisit_jwt_secret,
            subject=args.subject,
            role=args.role,
            clinics=clinics,
            ttl=timedelta(hours=args.ttl_hours),
            issuer=auth.revisit_jwt_issuer,
            audience=auth.revisit_jwt_audience,
        )
    except ValueError as exc:  # e.g. --all-clinics for a role other than admin
        raise UsageError(str(exc)) from None
    print(token)
    return 0


def _apikey_create(args: argparse.Namespace) -> int:
    from services.ingest.keys import create_api_key

    url = _required_env("DATABASE_URL", "the key is stored (hashed) in ingest's schema")
    key = asyncio.run(create_api_key(url, args.clinic, args.label))
    print(key)  # shown once: only its hash is stored
    return 0


def _ehr_check(args: argparse.Namespace) -> int:
    from services.messenger.ehr.check import check_clinic
    from shared.events.common import ServiceLine

    url = _required_env("DATABASE_URL", "the connection is read from the messenger's schema")
    if args.service_line and args.service_line not in ServiceLine.__members__:
        raise UsageError(f"unknown --service-line; one of: {', '.join(ServiceLine)}")
    line = ServiceLine(args.service_line) if args.service_line else None
    lines = asyncio.run(check_clinic(url, args.clinic, line))
    if lines is None:
        print(f"{args.clinic}: no EHR connection (PUT /ehr/connections/{args.clinic} first)")
        return 1
    print(f"EHR check of {args.clinic}")
    for line_ in lines:
        print(f"  {line_}")
    failed = [x for x in lines if x.status == "FAIL"]
    print("ready to book" if not failed else f"{len(failed)} step(s) failed")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="revisit", description="Revisit: patient recall for dermatology practices."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser("dev", help="run the whole stack locally (what `make run` does)")
    dev.add_argument("--data-dir", default=".revisit", help="state folder (default: .revisit)")
    dev.add_argument("--fresh", action="store_true", help="new database and dev credentials")
    dev.add_argument("--no-simulator", action="store_true", help="no synthetic practice")
    _practice_options(dev)
    dev.add_argument(
        "--view",
        choices=("auto", "live", "log"),
        default="auto",
        help="live: the simulation's dashboard (services log to <data dir>/stack.log); log: every "
        "service's log lines; auto: live on a terminal with the simulator on (default)",
    )
    dev.set_defaults(handler=_dev)

    simulate = sub.add_parser(
        "simulate", help="the synthetic practice beside a running stack (`revisit dev` starts it)"
    )
    simulate.add_argument("--data-dir", default=".revisit", help="the dev stack's data folder")
    simulate.add_argument("--ingest-url", required=True, metavar="URL")
    simulate.add_argument("--messenger-url", required=True, metavar="URL")
    simulate.add_argument("--sequencer-url", required=True, metavar="URL")
    simulate.add_argument("--escalation-url", required=True, metavar="URL")
    simulate.add_argument("--mllp-port", type=int, required=True, metavar="PORT")
    simulate.add_argument("--port", type=int, required=True, help="its FHIR scheduling API")
    _practice_options(simulate)
    simulate.set_defaults(handler=_simulate)

    pilot = sub.add_parser(
        "pilot", help="rehearse a pilot on the synthetic practice and write its report"
    )
    pilot.add_argument("--segment", required=True, help="e.g. cancelled_not_rescheduled")
    pilot.add_argument(
        "--patients", type=int, default=200, help="the launch group's size (default 200)"
    )
    pilot.add_argument("--holdout", type=float, default=0.2, help="control share (default 0.2)")
    pilot.add_argument(
        "--days", type=int, default=30, help="the pilot's days, define week included (default 30)"
    )
    cohort = pilot.add_argument_group("cohort (comma-separated; each left out takes everyone)")
    cohort.add_argument("--service-lines", help="e.g. neurotoxin,filler; or: cosmetic")
    cohort.add_argument("--cancellation-reasons", help="e.g. schedule_conflict,cost,no_show")
    cohort.add_argument("--cancelled-by", help="patient, practice or unknown")
    cohort.add_argument("--urgencies", help="routine, soon or urgent")
    cohort.add_argument("--providers", help="provider ids of the synthetic practice")
    cohort.add_argument("--locations", help="location ids of the synthetic practice")
    cohort.add_argument("--min-age-days", type=int, help="the need came due at least N days ago")
    cohort.add_argument("--max-age-days", type=int, help="... and at most N days ago")
    pilot.add_argument(
        "--baseline-days",
        type=int,
        default=28,
        help="the previous weeks compared with the pilot: days before the launch (default 28)",
    )
    pilot.add_argument(
        "--not-exclusive",
        action="store_true",
        help="let the practice's other outreach run beside the pilot (default: only the pilot)",
    )
    pilot.add_argument("--seed", type=int, default=7)
    pilot.add_argument(
        "--start", type=_instant, help="the simulated day the pilot starts (ISO, with offset)"
    )
    pilot.add_argument(
        "--speed", type=float, default=12.0, help="at most this many simulated hours a second"
    )
    pilot.add_argument(
        "--follow-days", type=int, default=14, help="outcomes followed after enrolment closes"
    )
    pilot.add_argument("--out", default="pilot-report", help="report folder (default pilot-report)")
    pilot.set_defaults(handler=_pilot)

    chaos = sub.add_parser(
        "chaos",
        help="the simulated practice under injected faults, then the invariants (make chaos)",
    )
    chaos.add_argument("--seed", type=int, default=7, help="the faults and the practice")
    chaos.add_argument(
        "--short", action="store_true", help="two faults and a few simulated days (for tests)"
    )
    chaos.add_argument("--data-dir", help="keep the run's folder here (default: a temporary one)")
    chaos.set_defaults(handler=_chaos)

    # Names are checked in the handler: importing shared.config here would slow down --help.
    service = sub.add_parser("service", help="run one service (configured from the environment)")
    service.add_argument("name", help="e.g. ingest, segmenter, sequencer, messenger, console, ...")
    service.set_defaults(handler=_service)

    sub.add_parser("migrate", help="run every service's migrations ($DATABASE_URL)").set_defaults(
        handler=_migrate
    )
    sub.add_parser("topics", help="create every topic ($KAFKA_BOOTSTRAP_SERVERS)").set_defaults(
        handler=_topics
    )

    clock = sub.add_parser(
        "clock", help="show or move the shared controlled clock (dev stack, tests, rehearsals)"
    )
    clock.add_argument("action", choices=["show", "advance", "set"])
    clock.add_argument("--days", type=float, default=0)
    clock.add_argument("--hours", type=float, default=0)
    clock.add_argument("--minutes", type=float, default=0)
    clock.add_argument("--at", help="ISO instant with offset, for `set`")
    clock.add_argument("--rate", type=float, default=1.0, help="virtual seconds per real second")
    clock.add_argument("--data-dir", default=".revisit", help="the dev stack's data folder")
    clock.set_defaults(handler=_clock)

    token = sub.add_parser("token", help="print a staff JWT ($REVISIT_JWT_SECRET)")
    token.add_argument(
        "--role", required=True, choices=("viewer", "operator", "admin", "ehr_writer")
    )
    scope = token.add_mutually_exclusive_group(required=True)
    scope.add_argument("--clinic", action="append", metavar="ID", help="repeat for several")
    scope.add_argument("--all-clinics", action="store_true")
    token.add_argument("--subject", required=True, metavar="NAME", help="who the token is for")
    token.add_argument("--ttl-hours", type=float, default=8.0, metavar="N", help="default 8")
    token.set_defaults(handler=_token)
    from revisit.tokens_cli import add_parser as add_token_revoke_parser

    add_token_revoke_parser(sub, UsageError)

    add_backfill_command(sub)
    from revisit.dlq import add_parser as add_dlq_parser  # light: its work imports lazily

    add_dlq_parser(sub, _instant, UsageError)
    from revisit.audit_cli import add_parsers as add_audit_parsers

    add_audit_parsers(sub, _instant)

    apikey = sub.add_parser("apikey", help="integration API keys ($DATABASE_URL)")
    apikey_sub = apikey.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = apikey_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--clinic", required=True, metavar="ID")
    create.add_argument("--label", required=True, metavar="TEXT")
    create.set_defaults(handler=_apikey_create)

    ehr = sub.add_parser(
        "ehr", help="EHR connections ($DATABASE_URL, secrets from the environment)"
    )
    ehr_sub = ehr.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = ehr_sub.add_parser(
        "check", help="capability, auth, slot search and a dry-run booking for one clinic"
    )
    check.add_argument("clinic", metavar="CLINIC")
    check.add_argument("--service-line", help="the service line to search (default: first mapped)")
    check.set_defaults(handler=_ehr_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except (UsageError, AuditUsageError) as exc:
        parser.exit(2, f"{parser.prog} {args.command}: error: {exc}\n")
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
