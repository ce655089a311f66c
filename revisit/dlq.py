"""`revisit dlq list|show|replay|purge`: the dead letters, from the command line.

Reads the broker (``KAFKA_BOOTSTRAP_SERVERS``) and the platform schema (``DATABASE_URL``); a
running `revisit dev` stack's are found in its data folder when those are unset. The logic is
``shared.dlq``'s, shared with the services' ``/admin/dlq`` routes.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the broker and database clients load only when a dlq command runs
    from shared.dlq import DeadLetter, DeadLetters, Filter


class DlqUsageError(Exception):
    """Missing configuration or an impossible selection (exit 2)."""


def _locations(data_dir: str) -> tuple[str, str]:
    recorded: dict[str, Any] = {}
    try:
        recorded = json.loads((Path(data_dir) / "dev-credentials.json").read_text())
    except (OSError, ValueError):
        recorded = {}
    url = os.environ.get("DATABASE_URL", "").strip() or str(recorded.get("database_url", ""))
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or str(
        recorded.get("kafka_bootstrap", "")
    )
    if not url or not bootstrap:
        raise DlqUsageError(
            "set DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS (or run it beside `revisit dev`)"
        )
    return url, bootstrap


def _filter(args: argparse.Namespace, include_handled: bool = False) -> Filter:
    from shared.dlq import Filter

    return Filter(
        topics=tuple(args.topic or ()),
        reason=args.reason,
        since=args.since,
        until=args.until,
        include_handled=include_handled,
    )


def _line(letter: DeadLetter) -> str:
    s = letter.summary()
    handled = f"  [{s['handled']}]" if s["handled"] else ""
    error = f"  {s['error']}" if s["error"] else ""
    return (
        f"{s['id']}  {s['at']}  {s['reason']}  consumer={s['consumer'] or '-'}  "
        f"from={s['source']}  key={s['key']}{error}{handled}"
    )


def _body(value: bytes) -> str:
    try:
        return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
    except (UnicodeDecodeError, ValueError):
        return f"(not JSON, {len(value)} bytes) {value[:2000]!r}"


async def _run(args: argparse.Namespace) -> str:
    from sqlalchemy.ext.asyncio import create_async_engine

    from shared.dlq import DeadLetters

    url, bootstrap = _locations(args.data_dir)
    engine = create_async_engine(url, hide_parameters=True)
    letters = DeadLetters(bootstrap, engine)
    actor = f"cli:{getpass.getuser()}"
    try:
        if args.action == "list":
            found = await letters.find(_filter(args, include_handled=args.all))
            if args.json:
                return json.dumps([x.summary() for x in found], indent=2)
            lines = [_line(x) for x in found[-args.limit :]]
            return "\n".join([*lines, f"{len(found)} dead letter(s)"])
        if args.action == "show":
            [letter] = await letters.get([args.id])
            return "\n".join([_line(letter), _body(letter.value)])
        chosen = await _chosen(letters, args)
        if args.action == "replay":
            if args.dry_run:
                return "\n".join([*map(_line, chosen), f"would replay {len(chosen)}"])
            count = await letters.replay(chosen, actor)
            return f"replayed {count} dead letter(s) into their original topics"
        if not args.yes:
            raise DlqUsageError(f"purge would mark {len(chosen)} dead letter(s); add --yes")
        return f"purged {await letters.purge(chosen, actor)} dead letter(s)"
    finally:
        await engine.dispose()


async def _chosen(letters: DeadLetters, args: argparse.Namespace) -> list[DeadLetter]:
    if args.ids:
        return await letters.get(args.ids)
    if not (args.topic or args.reason or args.since or args.until or args.every):
        raise DlqUsageError(
            "name dead letters by id, or select with --topic/--reason/--since/--until (or --every)"
        )
    return await letters.find(_filter(args))


def main(args: argparse.Namespace) -> int:
    try:
        print(asyncio.run(_run(args)))
    except KeyError as exc:
        raise DlqUsageError(str(exc.args[0]) if exc.args else "not found") from None
    except ValueError as exc:
        raise DlqUsageError(str(exc)) from None
    return 0


def add_parser(sub: Any, instant: Callable[[str], Any], usage_error: type[Exception]) -> None:
    """`revisit dlq ...`; ``usage_error`` is the command line's exit-2 error."""

    def handler(args: argparse.Namespace) -> int:
        try:
            return main(args)
        except DlqUsageError as exc:
            raise usage_error(str(exc)) from None

    dlq = sub.add_parser("dlq", help="dead letters: list, show, replay into their topic, purge")
    actions = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")

    def selection(p: argparse.ArgumentParser) -> None:
        p.add_argument("--topic", action="append", help="source or .dlq topic (repeatable)")
        p.add_argument("--reason", help="e.g. malformed, HandlerFailed, ValueError")
        p.add_argument("--since", type=instant, help="dead-lettered at or after (ISO, offset)")
        p.add_argument("--until", type=instant, help="dead-lettered before (ISO, offset)")
        p.add_argument("--data-dir", default=".revisit", help="a `revisit dev` data folder")

    listing = actions.add_parser("list", help="what is left to handle (--all: handled too)")
    selection(listing)
    listing.add_argument("--all", action="store_true", help="include replayed and purged")
    listing.add_argument("--limit", type=int, default=200, help="newest N lines (default 200)")
    listing.add_argument("--json", action="store_true", help="JSON, without the bytes")
    show = actions.add_parser("show", help="one dead letter, with its bytes")
    show.add_argument("id", help="<dlq topic>:<partition>:<offset>")
    show.add_argument("--data-dir", default=".revisit", help="a `revisit dev` data folder")
    for name, what in (("replay", "send into the original topic"), ("purge", "mark as handled")):
        p = actions.add_parser(name, help=what)
        p.add_argument("ids", nargs="*", help="<dlq topic>:<partition>:<offset>")
        selection(p)
        p.add_argument("--every", action="store_true", help="every dead letter left")
        if name == "replay":
            p.add_argument("--dry-run", action="store_true", help="list what would be replayed")
        else:
            p.add_argument("--yes", action="store_true", help="really purge")
    dlq.set_defaults(handler=handler)
