"""`revisit audit query|verify|prune` and `revisit patient erase`, from the command line.

Read ``DATABASE_URL`` (or a running `revisit dev` stack's, from its data folder). The work is
``shared.audit_log``'s and ``shared.erasure``'s, shared with the services' admin routes; an
erasure from here is recorded in the audit log as done by ``cli:<login name>``.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


class AuditUsageError(Exception):
    """Missing configuration (exit 2)."""


def _database_url(data_dir: str) -> str:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        try:
            recorded = json.loads((Path(data_dir) / "dev-credentials.json").read_text())
            url = str(recorded.get("database_url", ""))
        except (OSError, ValueError):
            url = ""
    if not url:
        raise AuditUsageError("set DATABASE_URL (or run it beside `revisit dev`)")
    return url


def _run(args: argparse.Namespace, work: Callable[[AsyncEngine], Awaitable[int]]) -> int:
    from sqlalchemy.ext.asyncio import create_async_engine

    url = _database_url(args.data_dir)

    async def main() -> int:
        engine = create_async_engine(url, hide_parameters=True)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _query(args: argparse.Namespace) -> int:
    from shared import audit_log

    query = audit_log.AuditQuery(
        args.clinic, args.patient, args.subject, args.since, args.until, args.limit
    )

    async def work(engine: AsyncEngine) -> int:
        for row in await audit_log.find(engine, query):
            print(json.dumps(row, default=str))
        return 0

    return _run(args, work)


def _verify(args: argparse.Namespace) -> int:
    from shared import audit_log

    async def work(engine: AsyncEngine) -> int:
        verdict = await audit_log.verify(engine)
        print(json.dumps(verdict.as_dict()))
        return 0 if verdict.ok else 1

    return _run(args, work)


def _prune(args: argparse.Namespace) -> int:
    from shared import audit_log

    async def work(engine: AsyncEngine) -> int:
        print(f"removed {await audit_log.prune(engine, args.keep_days)} audit row(s)")
        return 0

    return _run(args, work)


def _erase(args: argparse.Namespace) -> int:
    from shared.erasure import erase_patient

    who: dict[str, Any] = {"service": "cli", "subject": f"cli:{getpass.getuser()}"}

    async def work(engine: AsyncEngine) -> int:
        done = await erase_patient(engine, args.clinic, args.patient, who=who)
        changed = {table: n for table, n in done.rows.items() if n}
        print(json.dumps({"patient_key": done.patient_key, "rows": changed}))
        return 0

    return _run(args, work)


def add_parsers(sub: Any, instant: Callable[[str], Any]) -> None:
    audit = sub.add_parser("audit", help="who read or changed patient data ($DATABASE_URL)")
    audit.add_argument("--data-dir", default=".revisit", help="the dev stack's data folder")
    actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    query = actions.add_parser("query", help="a clinic's audit rows, oldest first (JSON lines)")
    query.add_argument("--clinic", required=True, metavar="ID")
    query.add_argument("--patient", metavar="PATIENT_KEY")
    query.add_argument("--subject", metavar="WHO", help="a staff subject or api-key:<id>")
    query.add_argument("--since", type=instant, help="ISO instant with offset")
    query.add_argument("--until", type=instant, help="ISO instant with offset")
    query.add_argument("--limit", type=int, default=500)
    query.set_defaults(handler=_query)
    actions.add_parser(
        "verify", help="check the hash chain (exit 1 naming the first changed or missing row)"
    ).set_defaults(handler=_verify)
    prune = actions.add_parser("prune", help="remove rows older than --keep-days (>= 30)")
    prune.add_argument("--keep-days", type=int, required=True)
    prune.set_defaults(handler=_prune)

    patient = sub.add_parser("patient", help="one patient's data ($DATABASE_URL)")
    patient.add_argument("--data-dir", default=".revisit", help="the dev stack's data folder")
    patient_actions = patient.add_subparsers(dest="action", required=True, metavar="ACTION")
    erase = patient_actions.add_parser(
        "erase", help="remove or redact one patient's data in every schema (counts stay)"
    )
    erase.add_argument("clinic", metavar="CLINIC")
    erase.add_argument("patient", metavar="PATIENT", help="the patient's id in that clinic")
    erase.set_defaults(handler=_erase)
