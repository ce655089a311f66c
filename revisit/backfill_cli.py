"""The `revisit backfill` command line: options, credentials, the report (see revisit.backfill)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any


def add_backfill_command(sub: Any) -> None:
    backfill = sub.add_parser(
        "backfill",
        help="onboard a practice: load its history (FHIR bundles or $export NDJSON, HL7 v2 "
        "files) through ingest with its outreach held until it is all in",
    )
    backfill.add_argument("folder", help="the export: *.ndjson, *.json, *.hl7 / *.er7 files")
    backfill.add_argument("--clinic", required=True, metavar="ID")
    backfill.add_argument("--ingest-url", metavar="URL", help="default: the dev stack's")
    backfill.add_argument("--segmenter-url", metavar="URL", help="default: the dev stack's")
    backfill.add_argument("--metrics-url", metavar="URL", help="default: the dev stack's")
    backfill.add_argument(
        "--checkpoint", metavar="FILE", help="default: <folder>/.revisit-backfill-<clinic>.json"
    )
    backfill.add_argument("--concurrency", type=int, default=4, metavar="N")
    backfill.add_argument("--bundle-size", type=int, default=200, metavar="N")
    backfill.add_argument(
        "--no-hold", action="store_true", help="do not hold outreach (history already loaded)"
    )
    backfill.add_argument("--data-dir", default=".revisit", help="dev credentials, if no keys")
    backfill.set_defaults(handler=_backfill)


def _backfill(args: argparse.Namespace) -> int:
    """Keys come from $REVISIT_API_KEY (the clinic's integration key) and $REVISIT_TOKEN (an
    admin token: holding outreach is a parameter change), else the dev stack's credentials."""
    from revisit import backfill
    from revisit.cli import UsageError
    from revisit.stack import HOST, load_credentials
    from shared.config import DEFAULT_PORTS

    creds = load_credentials(Path(args.data_dir) / "dev-credentials.json")
    api_key = os.environ.get("REVISIT_API_KEY") or creds.get("api_key", "")
    token = os.environ.get("REVISIT_TOKEN") or creds.get("admin_token", "")
    if not api_key or not token:
        raise UsageError("set REVISIT_API_KEY and REVISIT_TOKEN (or run beside `revisit dev`)")
    folder = Path(args.folder)

    def url(given: str | None, service: str) -> str:
        return (given or f"http://{HOST}:{DEFAULT_PORTS[service]}").rstrip("/")

    options = backfill.Options(
        folder=folder,
        clinic_id=args.clinic,
        ingest_url=url(args.ingest_url, "ingest"),
        segmenter_url=url(args.segmenter_url, "segmenter"),
        metrics_url=url(args.metrics_url, "metrics"),
        api_key=api_key,
        token=token,
        checkpoint=Path(args.checkpoint or folder / f".revisit-backfill-{args.clinic}.json"),
        concurrency=args.concurrency,
        bundle_size=args.bundle_size,
        hold=not args.no_hold,
        show_progress=sys.stderr.isatty(),
    )
    try:
        report = asyncio.run(backfill.run(options))
    except (backfill.BackfillError, backfill.SourceError) as exc:
        print(f"revisit backfill: {exc}", file=sys.stderr)
        return 1
    for line in backfill.render(report):
        print(line)
    return 0 if not report.refused_records else 3
