"""Staff access tokens from the practice's identity provider (OpenID Connect), checked against
the provider's published keys (JWKS).

What is checked, in order: the signing algorithm is on the allow-list (asymmetric only: an
``HS256`` or ``none`` header never reaches a key), the key named by ``kid`` is one the issuer
publishes, the signature, the issuer, the audience, expiry and not-before (with a small
clock-skew leeway), and that the claims every staff token needs are present.

Keys rotate: an unknown ``kid`` fetches the key set again (at most once per
``min_refetch_s``, so a stream of forged kids cannot make this service hammer the provider),
and the whole set is refreshed after ``ttl_s`` in any case.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx
import jwt

# What a provider may sign staff tokens with; symmetric algorithms are never on this list (an
# HMAC key would have to be shared with every service, which is what OIDC replaces).
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class TokenRefused(Exception):
    """The token is not acceptable; the message says why and never carries the token."""


def _local(url: str) -> bool:
    host = httpx.URL(url).host
    return host in ("127.0.0.1", "localhost", "::1")


def _secure(url: str) -> bool:
    scheme = httpx.URL(url).scheme
    return scheme == "https" or (scheme == "http" and _local(url))


class JwksKeys:
    """The issuer's signing keys, fetched over HTTPS (plain HTTP only on this machine)."""

    def __init__(
        self,
        issuer: str,
        *,
        jwks_url: str = "",
        ttl_s: float = 600.0,
        min_refetch_s: float = 10.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.issuer = issuer  # compared with the iss claim exactly as configured
        self._base = issuer.rstrip("/")
        self._jwks_url = jwks_url
        self._ttl_s = ttl_s
        self._min_refetch_s = min_refetch_s
        self._timeout_s = timeout_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -1e18
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many times the key set was read (tests watch rotation with it)

    async def _get(self, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        if not _secure(url):
            raise TokenRefused("the identity provider must be reached over HTTPS")
        try:
            response = await client.get(url)
        except httpx.HTTPError:
            raise TokenRefused("the identity provider's keys could not be read") from None
        if response.status_code != 200:
            raise TokenRefused(f"the identity provider answered {response.status_code}")
        try:
            doc = response.json()
        except ValueError:
            raise TokenRefused("the identity provider's answer is not JSON") from None
        if not isinstance(doc, dict):
            raise TokenRefused("the identity provider's answer is not a JSON object")
        return doc

    async def _fetch(self) -> None:
        async with httpx.AsyncClient(
            timeout=self._timeout_s, follow_redirects=False, trust_env=False
        ) as client:
            url = self._jwks_url
            if not url:
                found = await self._get(client, f"{self._base}/.well-known/openid-configuration")
                if str(found.get("issuer", "")).rstrip("/") != self._base:
                    raise TokenRefused("the discovery document names another issuer")
                url = str(found.get("jwks_uri", ""))
                if not url:
                    raise TokenRefused("the discovery document has no jwks_uri")
                self._jwks_url = url
            doc = await self._get(client, url)
        try:
            keyset = jwt.PyJWKSet.from_dict(doc)
        except jwt.PyJWTError:
            raise TokenRefused("the identity provider's keys cannot be read") from None
        self._keys = {str(k.key_id): k for k in keyset.keys if k.key_id}
        self._fetched_at = time.monotonic()
        self.fetches += 1

    async def key(self, kid: str | None) -> jwt.PyJWK:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            unknown = kid is None or kid not in self._keys
            if age > self._ttl_s or (unknown and age > self._min_refetch_s):
                try:
                    await self._fetch()
                except TokenRefused:
                    # The provider is away: a key already known stays good until it answers
                    # again (a rotation away from it is then seen at the next read).
                    if unknown:
                        raise
                    self._fetched_at = time.monotonic() - max(self._ttl_s - self._min_refetch_s, 0)
        if kid is None:
            raise TokenRefused("the token names no signing key (kid)")
        if kid not in self._keys:
            raise TokenRefused("the token is signed with a key the issuer does not publish")
        return self._keys[kid]


_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAlgorithmError, "token algorithm not allowed"),
    (jwt.DecodeError, "malformed token"),
)


async def verify_access_token(
    token: str,
    keys: JwksKeys,
    *,
    audience: str,
    algorithms: Sequence[str],
    leeway_s: float,
    required: Sequence[str],
) -> dict[str, Any]:
    """The claims of a provider-signed token, or TokenRefused saying what is wrong."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenRefused("malformed token") from None
    alg = header.get("alg")
    allowed = [a for a in algorithms if a in ASYMMETRIC]
    if alg not in allowed:
        raise TokenRefused("token algorithm not allowed")
    kid = header.get("kid")
    key = await keys.key(str(kid) if kid is not None else None)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key.key,
            algorithms=[str(alg)],
            audience=audience,
            issuer=keys.issuer,
            leeway=leeway_s,
            options={"require": list(required)},
        )
    except jwt.MissingRequiredClaimError as exc:
        raise TokenRefused(f"token has no {exc.claim} claim") from None
    except jwt.PyJWTError as exc:
        detail = next((d for kind, d in _ERRORS if isinstance(exc, kind)), "invalid token")
        raise TokenRefused(detail) from None
    return claims
