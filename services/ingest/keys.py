"""Integration API keys: created for one clinic, stored hashed, listed without secrets, revoked.

Rotation is create-then-revoke: a clinic may hold several active keys while its integration
engine switches over, so no message is refused in between.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from services.ingest import repository
from shared.auth import ApiKeyLookup, AuthError, new_api_key, parse_api_key, verify_api_key_secret


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    clinic_id: str
    label: str
    created_at: datetime
    api_key: str  # the plaintext: shown once, never stored


async def issue_key(
    session: AsyncSession, clinic_id: str, label: str, created_by: str | None = None
) -> IssuedKey:
    plaintext, key_id, secret_hash = new_api_key()
    created_at = await repository.insert_api_key(
        session, key_id, clinic_id, secret_hash, label, created_by
    )
    return IssuedKey(key_id, clinic_id, label, created_at, plaintext)


async def create_api_key(database_url: str, clinic_id: str, label: str) -> str:
    """Create a key for ``clinic_id`` (CLI and dev stack); returns the plaintext."""
    engine = create_async_engine(database_url, hide_parameters=True)
    try:
        async with AsyncSession(engine) as session, session.begin():
            issued = await issue_key(session, clinic_id, label, created_by="cli")
    finally:
        await engine.dispose()
    return issued.api_key


def api_key_lookup(sessions: async_sessionmaker[AsyncSession]) -> ApiKeyLookup:
    async def lookup(key_id: str) -> tuple[str, str, bool] | None:
        async with sessions() as session:
            return await repository.find_api_key(session, key_id)

    return lookup


class KeyCache:
    """Stored keys by id, trusted for ``ttl`` seconds: the HTTP authenticator's lookup and the
    MLLP listener's (which has no authenticator of its own) share it.

    Without it every request costs a query; with it a key revoked in another process keeps
    working for at most ``ttl`` seconds (not at all in the process that revoked it).
    """

    def __init__(
        self,
        lookup: ApiKeyLookup,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._clock = clock
        self._rows: dict[str, tuple[tuple[str, str, bool] | None, float]] = {}
        self._verified: dict[str, tuple[str, str, float]] = {}  # plaintext -> key id, clinic

    async def row(self, key_id: str) -> tuple[str, str, bool] | None:
        cached = self._rows.get(key_id)
        now = self._clock()
        if cached is not None and now - cached[1] < self._ttl:
            return cached[0]
        found = await self._lookup(key_id)
        if self._ttl > 0:
            if len(self._rows) > 10_000:
                self._rows.clear()
            self._rows[key_id] = (found, now)
        return found

    async def clinic_of(self, plaintext: str) -> str:
        """The clinic the key belongs to; AuthError (with a reason) when it is not usable."""
        verified = self._verified.get(plaintext)
        if verified is not None and self._clock() - verified[2] < self._ttl:
            return verified[1]
        key_id, secret = parse_api_key(plaintext)
        row = await self.row(key_id)
        if row is None or not verify_api_key_secret(secret, row[1]):
            raise AuthError(401, "invalid API key")
        if not row[2]:
            raise AuthError(401, "API key revoked")
        if self._ttl > 0:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[plaintext] = (key_id, row[0], self._clock())
        return row[0]

    def forget(self, key_id: str) -> None:
        self._rows.pop(key_id, None)
        for plaintext in [p for p, v in self._verified.items() if v[0] == key_id]:
            del self._verified[plaintext]
