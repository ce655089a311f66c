"""Who is calling, and which clinics they may touch.

Two kinds of caller reach the ops APIs:

- EHR integrations, with an API key ``rvk_<key_id>_<secret>`` scoped to exactly one clinic
  (only the ingest service stores keys, so it passes an :class:`ApiKeyLookup`);
- staff, with a JWT naming a role (viewer < operator < admin) and a clinic scope (a list of
  clinic ids, or ``"*"`` for every clinic, which only an admin may hold): in production an
  access token of the practice's identity provider (OpenID Connect, checked against its JWKS:
  ``shared/jwks.py``), on the dev stack and in tests an HS256 token signed with
  ``REVISIT_JWT_SECRET`` (refused in production).

Either kind of token is refused when it lives longer than ``REVISIT_TOKEN_MAX_HOURS`` (exp - iat)
or when its ``jti`` was revoked (``shared/revocation.py``). The ``ehr_writer`` role is outside
the ladder: it may only write EHR facts through ingest, as an integration key does, and read
nothing.

Refusals say why (401: who are you? 403: not allowed) but never name the clinic a resource
belongs to, so a probe cannot learn which clinic holds a patient.

Wiring (composition root)::

    app.state.authenticator = build_authenticator(settings.auth, api_key_lookup)

Routes then take ``CurrentPrincipal``, ``Operator`` or ``Admin``, and call
``require_clinic(principal, clinic_id)`` before touching clinic data. ``/healthz`` and
``/readyz`` simply do not declare any of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Protocol, cast

import jwt
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from shared.api_keys import (
    _UNKNOWN_KEY_HASH,
    hash_api_key_secret,
    new_api_key,
    parse_api_key,
    verify_api_key_secret,
)
from shared.config import AuthSettings
from shared.jwks import JwksKeys, TokenRefused, verify_access_token
from shared.principal import (
    ALL_CLINICS,
    API_KEY_HEADER,
    EHR_WRITER,
    NOT_IN_SCOPE,
    ROLES,
    AuthError,
    Principal,
    Role,
    require_clinic,
)
from shared.staff_tokens import (
    _hs256_claims,
    decode_staff_token,
    issue_staff_token,
    principal_from_claims,
)

__all__ = [
    "ALL_CLINICS",
    "API_KEY_HEADER",
    "EHR_WRITER",
    "NOT_IN_SCOPE",
    "ROLES",
    "Admin",
    "ApiKeyLookup",
    "AuthError",
    "Authenticator",
    "CurrentPrincipal",
    "EhrWriter",
    "Operator",
    "Principal",
    "Role",
    "build_authenticator",
    "current_principal",
    "decode_staff_token",
    "hash_api_key_secret",
    "issue_staff_token",
    "new_api_key",
    "parse_api_key",
    "principal_from_claims",
    "require_clinic",
    "require_role",
    "verify_api_key_secret",
]


# --- FastAPI glue ----------------------------------------------------------------------------


class ApiKeyLookup(Protocol):
    """Finds a stored key by id: (clinic_id, stored_hash, active), or None if unknown."""

    async def __call__(self, key_id: str, /) -> tuple[str, str, bool] | None: ...


RevocationCheck = Callable[[str], Awaitable[bool]]


class Authenticator:
    """Turns request headers into a :class:`Principal`; usable directly as a dependency."""

    def __init__(
        self,
        settings: AuthSettings,
        api_key_lookup: ApiKeyLookup | None = None,
        *,
        integration_role: Role = "operator",
        profile: str = "dev",
        revoked: RevocationCheck | None = None,
    ) -> None:
        self._settings = settings
        self._lookup = api_key_lookup
        # Integrations write EHR data for their one clinic, which is operator-level work.
        self._integration_role: Role = integration_role
        self._production = profile == "production"
        self._revoked = revoked
        self._keys: JwksKeys | None = None
        if settings.revisit_oidc_issuer:
            self._keys = JwksKeys(
                settings.revisit_oidc_issuer,
                jwks_url=settings.revisit_oidc_jwks_url,
                ttl_s=settings.revisit_oidc_jwks_ttl_s,
            )

    async def __call__(self, request: Request) -> Principal:
        return await self.authenticate(
            request.headers.get("authorization"), request.headers.get(API_KEY_HEADER)
        )

    async def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        if authorization and api_key:
            # Two identities in one request leaves it unclear whose scope applies.
            raise AuthError(401, "send either a bearer token or an API key, not both")
        if api_key:
            return await self._from_api_key(api_key)
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError(401, "unsupported authorization scheme; use Bearer")
            return await self._from_token(token.strip())
        raise AuthError(401, f"missing credentials: send a bearer token or {API_KEY_HEADER}")

    async def _from_token(self, token: str) -> Principal:
        settings = self._settings
        try:
            alg = str(jwt.get_unverified_header(token).get("alg", ""))
        except jwt.PyJWTError:
            raise AuthError(401, "malformed token") from None
        leeway = timedelta(seconds=settings.revisit_token_leeway_s)
        if alg.upper().startswith("HS"):
            if self._production:
                raise AuthError(
                    401, "HS256 staff tokens are refused in production: use the identity provider"
                )
            claims = _hs256_claims(
                token,
                settings.revisit_jwt_secret,
                issuer=settings.revisit_jwt_issuer,
                audience=settings.revisit_jwt_audience,
                leeway=leeway,
            )
            principal = principal_from_claims(claims)
        else:
            if self._keys is None:
                raise AuthError(401, "token algorithm not allowed")
            try:
                claims = await verify_access_token(
                    token,
                    self._keys,
                    audience=settings.revisit_oidc_audience,
                    algorithms=settings.oidc_algorithms(),
                    leeway_s=leeway.total_seconds(),
                    required=["sub", "iss", "aud", "iat", "exp", "jti"],
                )
            except TokenRefused as exc:
                raise AuthError(401, str(exc)) from None
            principal = principal_from_claims(
                claims,
                role_claim=settings.revisit_oidc_role_claim,
                clinics_claim=settings.revisit_oidc_clinics_claim,
            )
        lifetime = float(claims["exp"]) - float(claims["iat"])
        if lifetime > settings.revisit_token_max_hours * 3600:
            raise AuthError(
                401, f"token lives longer than the maximum {settings.revisit_token_max_hours:g} h"
            )
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise AuthError(401, "token has no jti claim")
        if self._revoked is not None and await self._revoked(jti):
            raise AuthError(401, "token revoked")
        return principal

    async def _from_api_key(self, plaintext: str) -> Principal:
        if self._lookup is None:
            raise AuthError(401, "API keys are not accepted by this service")
        key_id, secret = parse_api_key(plaintext)
        row = await self._lookup(key_id)
        clinic_id, stored_hash, active = row if row is not None else ("", _UNKNOWN_KEY_HASH, False)
        # Unknown id and wrong secret get the same answer, so key ids cannot be enumerated.
        if not verify_api_key_secret(secret, stored_hash) or row is None:
            raise AuthError(401, "invalid API key")
        if not active:
            raise AuthError(401, "API key revoked")
        return Principal(
            kind="integration",
            subject=f"api-key:{key_id}",
            role=self._integration_role,
            clinics=frozenset({clinic_id}),
        )


def build_authenticator(
    settings: AuthSettings,
    api_key_lookup: ApiKeyLookup | None = None,
    *,
    integration_role: Role = "operator",
    profile: str = "dev",
    revoked: RevocationCheck | None = None,
) -> Authenticator:
    return Authenticator(
        settings,
        api_key_lookup,
        integration_role=integration_role,
        profile=profile,
        revoked=revoked,
    )


# Declared only so that OpenAPI documents both schemes; the authenticator reads the headers
# itself so the rules above live in one place.
_bearer_scheme = HTTPBearer(auto_error=False, description="Staff JWT")
_api_key_scheme = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="Integration API key"
)


async def current_principal(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer_scheme)],
    _api_key: Annotated[str | None, Security(_api_key_scheme)],
) -> Principal:
    """The caller, authenticated by the authenticator the composition root put on app.state."""
    authenticator = getattr(request.app.state, "authenticator", None)
    if not callable(authenticator):
        # Fail closed: an app wired without an authenticator must not serve protected routes.
        raise RuntimeError("app.state.authenticator is not set; call build_authenticator()")
    principal = await cast(Callable[[Request], Awaitable[Principal]], authenticator)(request)
    request.state.principal = principal  # who the audit log records (shared.audit)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_role(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits callers holding ``role`` or a higher one (403 otherwise)."""

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if not principal.has_role(role):
            raise AuthError(403, f"this action needs the {role} role or higher")
        return principal

    return dependency


Operator = Annotated[Principal, Depends(require_role("operator"))]


async def _ehr_writer(principal: CurrentPrincipal) -> Principal:
    if not principal.writes_ehr_facts:
        raise AuthError(
            403, "EHR facts are written by an integration API key or an ehr_writer token"
        )
    return principal


# Ingest's writes: an EHR integration's key, or a token given the ehr_writer role on purpose
# (a backfill); never a staff operator's or admin's token, which could forge a patient's facts.
EhrWriter = Annotated[Principal, Depends(_ehr_writer)]
Admin = Annotated[Principal, Depends(require_role("admin"))]
