"""``revisit token-revoke``: revoke a staff token by its jti (or the token itself) in the
platform schema; every service refuses it within ``REVISIT_TOKEN_REVOCATION_CACHE_S``."""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any


def add_parser(sub: Any, usage_error: type[Exception]) -> None:
    revoke = sub.add_parser(
        "token-revoke", help="revoke a staff token before its expiry ($DATABASE_URL)"
    )
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--jti", metavar="ID", help="the token's jti claim")
    which.add_argument("--token", metavar="JWT", help="the token itself (its jti is read)")
    revoke.add_argument("--reason", default="", metavar="WORDS", help="kept with the revocation")
    revoke.add_argument("--by", default=os.environ.get("USER", "cli"), metavar="NAME")

    def handler(args: argparse.Namespace) -> int:
        from sqlalchemy.ext.asyncio import create_async_engine

        from shared.revocation import jti_of, revoke

        url = os.environ.get("DATABASE_URL", "").strip()
        if not url:
            raise usage_error("DATABASE_URL is not set; revocations live in the platform schema")
        jti, expires_at = args.jti, None
        if args.token:
            try:
                jti, expires_at = jti_of(args.token)
            except ValueError as exc:
                raise usage_error(f"--token: {exc}") from None

        async def run() -> Any:
            engine = create_async_engine(url)
            try:
                return await revoke(
                    engine, jti, by=args.by, reason=args.reason, expires_at=expires_at
                )
            finally:
                await engine.dispose()

        until = asyncio.run(run())
        print(f"revoked {jti} (kept until {until.isoformat(timespec='seconds')})")
        return 0

    revoke.set_defaults(handler=handler)
