"""Revoked staff tokens (``platform.revoked_tokens``), refused by every service.

A token is revoked by its ``jti`` until it would have expired anyway. Every service checks each
request's ``jti`` against the set of revocations still in force, which it re-reads at most every
``REVISIT_TOKEN_REVOCATION_CACHE_S`` seconds (5 by default): one small query per interval per
process, and a revocation reaches every service within that interval.

Revoke with ``POST /admin/tokens/revocations`` (any service, an admin of every clinic) or
``revisit token revoke``. Wall time throughout, never the controlled clock (as for expiry).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.auth import Admin

# A jti of unknown expiry is kept as long as any token may live (the maximum lifetime's ceiling).
_UNKNOWN_EXPIRY = timedelta(days=31)


class RevokedTokens:
    """The revocations in force, cached for ``ttl_s`` seconds (0: read on every check)."""

    def __init__(self, engine: AsyncEngine, ttl_s: float = 5.0) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._jtis: frozenset[str] = frozenset()
        self._read_at = -1e18
        self._lock = asyncio.Lock()

    async def __call__(self, jti: str) -> bool:
        if time.monotonic() - self._read_at >= self._ttl_s:
            async with self._lock:
                if time.monotonic() - self._read_at >= self._ttl_s:
                    async with self._engine.connect() as conn:
                        rows = await conn.execute(
                            text("SELECT jti FROM platform.revoked_tokens WHERE expires_at > now()")
                        )
                        self._jtis = frozenset(r[0] for r in rows)
                    self._read_at = time.monotonic()
        return jti in self._jtis

    def forget(self) -> None:
        """Read the revocations again at the next check (after this process revoked one)."""
        self._read_at = -1e18


async def revoke(
    engine: AsyncEngine, jti: str, *, by: str, reason: str = "", expires_at: datetime | None = None
) -> datetime:
    """Record a revocation (again: keeps the later expiry); returns when it stops mattering."""
    until = expires_at or datetime.now(UTC) + _UNKNOWN_EXPIRY
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO platform.revoked_tokens (jti, expires_at, revoked_by, reason) "
                "VALUES (:jti, :until, :by, :reason) ON CONFLICT (jti) DO UPDATE SET "
                "expires_at = GREATEST(platform.revoked_tokens.expires_at, EXCLUDED.expires_at)"
            ),
            {"jti": jti, "until": until, "by": by, "reason": reason},
        )
    return until


async def in_force(engine: AsyncEngine, limit: int = 500) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT jti, expires_at, revoked_by, reason, revoked_at "
                "FROM platform.revoked_tokens WHERE expires_at > now() "
                "ORDER BY revoked_at DESC LIMIT :n"
            ),
            {"n": limit},
        )
        return [dict(r._mapping) for r in rows]


def jti_of(token: str) -> tuple[str, datetime | None]:
    """The jti and expiry a token names (read, not verified: revoking needs no trust in it)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise ValueError("not a JWT") from None
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise ValueError("the token has no jti")
    exp = claims.get("exp")
    return jti, datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None


_ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, malformed, expired or revoked credential"},
    403: {"description": "not an admin of every clinic"},
    422: {"description": "invalid request: names what is wrong"},
}
router = APIRouter(prefix="/admin/tokens", tags=["admin"], responses=_ANSWERS)


class Revocation(BaseModel):
    """Revoke by ``jti``, or by giving the token itself (its jti and expiry are read from it)."""

    jti: str | None = Field(default=None, min_length=1, max_length=200)
    token: str | None = Field(default=None, min_length=10, max_length=8000)
    expires_at: AwareDatetime | None = None
    reason: str = Field(default="", max_length=200)


def _all_clinics(principal: Any) -> None:
    if principal.clinics is not None:
        raise HTTPException(403, "revoking tokens needs an admin of every clinic")


@router.post("/revocations", status_code=201, summary="Revoke a staff token (by jti or token)")
async def post_revocation(request: Request, body: Revocation, principal: Admin) -> dict[str, Any]:
    _all_clinics(principal)
    if (body.jti is None) == (body.token is None):
        raise HTTPException(422, "give jti or token, not both")
    jti, expires_at = body.jti, body.expires_at
    if body.token is not None:
        try:
            jti, read_expiry = jti_of(body.token)
        except ValueError as exc:
            raise HTTPException(422, f"token: {exc}") from None
        expires_at = expires_at or read_expiry
    assert jti is not None
    engine: AsyncEngine = request.app.state.runtime.engine
    until = await revoke(
        engine, jti, by=principal.subject, reason=body.reason, expires_at=expires_at
    )
    revoked = getattr(request.app.state, "revoked_tokens", None)
    if isinstance(revoked, RevokedTokens):
        revoked.forget()
    return {"jti": jti, "in_force_until": until}


@router.get("/revocations", summary="Revocations still in force, newest first")
async def get_revocations(
    request: Request, principal: Admin, limit: Annotated[int, Query(ge=1, le=5000)] = 500
) -> dict[str, Any]:
    _all_clinics(principal)
    return {"revocations": await in_force(request.app.state.runtime.engine, limit)}
