"""Who is calling, and which clinics they may touch.

Two kinds of caller reach the ops APIs:

- EHR integrations, with an API key ``rvk_<key_id>_<secret>`` scoped to exactly one clinic
  (only the ingest service stores keys, so it passes an :class:`ApiKeyLookup`);
- staff, with an HS256 JWT naming a role (viewer < operator < admin) and a clinic scope
  (a list of clinic ids, or ``"*"`` for every clinic, which only an admin may hold).

Refusals say why (401: who are you? 403: not allowed) but never name the clinic a resource
belongs to, so a probe cannot learn which clinic holds a patient.

Wiring (composition root)::

    app.state.authenticator = build_authenticator(settings.auth, api_key_lookup)

Routes then take ``CurrentPrincipal``, ``Operator`` or ``Admin``, and call
``require_clinic(principal, clinic_id)`` before touching clinic data. ``/healthz`` and
``/readyz`` simply do not declare any of them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Protocol, cast, get_args

import jwt
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from shared.config import AuthSettings

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}

ALL_CLINICS = "*"
API_KEY_HEADER = "X-API-Key"
NOT_IN_SCOPE = "this credential is not scoped to the requested clinic"


class AuthError(HTTPException):
    """A refused request: 401 (credentials missing or invalid) or 403 (not permitted).

    It is an ``HTTPException`` so that a route can call :func:`require_clinic` and FastAPI
    answers with the right status without any extra exception handler to forget.
    """

    def __init__(self, status_code: int, detail: str) -> None:
        # RFC 6750: a 401 names the scheme the client should use.
        headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.detail: str = detail


@dataclass(frozen=True)
class Principal:
    kind: Literal["integration", "staff"]
    subject: str
    role: Role
    clinics: frozenset[str] | None  # None = every clinic (admin tokens with "*" only)

    def may_access(self, clinic_id: str) -> bool:
        return self.clinics is None or clinic_id in self.clinics

    def has_role(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]


def require_clinic(principal: Principal, clinic_id: str) -> None:
    """Refuse (403) unless ``principal`` may act on ``clinic_id``."""
    if not principal.may_access(clinic_id):
        raise AuthError(403, NOT_IN_SCOPE)


# --- integration API keys --------------------------------------------------------------------
#
# The secret is 32 random bytes, so a plain SHA-256 of it cannot be brute-forced: slow password
# hashes (bcrypt, argon2) exist to protect low-entropy human passwords, and here they would only
# add tens of milliseconds to every ingest request. The "sha256:" prefix leaves room to change
# the scheme later without guessing what a stored hash is.

_KEY_PREFIX = "rvk"
_KEY_ID_BYTES = 8  # 16 hex characters: hex has no "_", so the key splits unambiguously
_SECRET_BYTES = 32
_API_KEY_SHAPE = re.compile(r"rvk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_HASH_SCHEME = "sha256:"


def hash_api_key_secret(secret: str) -> str:
    return _HASH_SCHEME + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """A fresh key as (plaintext to hand over once, key_id to store, hash to store)."""
    key_id = secrets.token_hex(_KEY_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    return f"{_KEY_PREFIX}_{key_id}_{secret}", key_id, hash_api_key_secret(secret)


def parse_api_key(plaintext: str) -> tuple[str, str]:
    """Split a presented key into (key_id, secret); 401 if it is not shaped like one of ours."""
    match = _API_KEY_SHAPE.fullmatch(plaintext.strip())
    if match is None:
        raise AuthError(401, "malformed API key")
    return match.group(1), match.group(2)


def verify_api_key_secret(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison, so response timing says nothing about the stored hash."""
    presented = hash_api_key_secret(secret).encode("utf-8")
    return hmac.compare_digest(presented, stored_hash.encode("utf-8"))


# Compared against when a key_id is unknown, so unknown and wrong keys cost the same time.
_UNKNOWN_KEY_HASH = hash_api_key_secret(secrets.token_urlsafe(_SECRET_BYTES))


# --- staff tokens ----------------------------------------------------------------------------

_ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["sub", "role", "clinics", "iss", "aud", "iat", "exp", "jti"]
# Tolerates small clock differences between the issuer and this host. Auth uses wall time on
# purpose, never the controlled clock: fast-forwarding a simulation must not mint or expire
# credentials.
_LEEWAY = timedelta(seconds=30)


def _clinic_scope(role: Role, clinics: object) -> frozenset[str] | None:
    if clinics == ALL_CLINICS:
        if role != "admin":
            raise ValueError("only an admin may be scoped to all clinics")
        return None
    if not isinstance(clinics, list) or not all(
        isinstance(c, str) and c and c != ALL_CLINICS for c in clinics
    ):
        raise ValueError('clinics must be a list of clinic ids or "*"')
    return frozenset(clinics)


def issue_staff_token(
    secret: str,
    *,
    subject: str,
    role: Role,
    clinics: list[str] | Literal["*"],
    ttl: timedelta,
    issuer: str = "revisit",
    audience: str = "revisit-ops",
    now: datetime | None = None,
) -> str:
    if not secret:
        raise ValueError("refusing to sign a staff token with an empty secret")
    if role not in _RANK:
        raise ValueError(f"unknown role {role!r}")
    _clinic_scope(role, clinics)
    issued_at = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": subject,
        "role": role,
        "clinics": clinics,
        "iss": issuer,
        "aud": audience,
        "iat": int(issued_at.timestamp()),
        "exp": int((issued_at + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


# Most specific first: InvalidSignatureError is a DecodeError, and so on.
_TOKEN_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAlgorithmError, "token algorithm not allowed"),
    (jwt.DecodeError, "malformed token"),
)


def decode_staff_token(token: str, secret: str, *, issuer: str, audience: str) -> Principal:
    """Verify a staff JWT and return who it speaks for; AuthError 401 saying what is wrong."""
    if not secret:
        # An empty HMAC key would let anyone forge tokens: refuse them all instead.
        raise AuthError(401, "staff tokens are not accepted by this service")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=_LEEWAY,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(401, f"token has no {exc.claim} claim") from None
    except jwt.PyJWTError as exc:
        detail = next((d for kind, d in _TOKEN_ERRORS if isinstance(exc, kind)), "invalid token")
        raise AuthError(401, detail) from None
    role, subject = claims["role"], claims["sub"]
    if role not in _RANK or not isinstance(subject, str) or not subject:
        raise AuthError(401, "token has an unknown role or subject")
    try:
        scope = _clinic_scope(cast(Role, role), claims["clinics"])
    except ValueError as exc:
        raise AuthError(401, f"token refused: {exc}") from None
    return Principal(kind="staff", subject=subject, role=cast(Role, role), clinics=scope)


# --- FastAPI glue ----------------------------------------------------------------------------


class ApiKeyLookup(Protocol):
    """Finds a stored key by id: (clinic_id, stored_hash, active), or None if unknown."""

    async def __call__(self, key_id: str, /) -> tuple[str, str, bool] | None: ...


class Authenticator:
    """Turns request headers into a :class:`Principal`; usable directly as a dependency."""

    def __init__(
        self,
        settings: AuthSettings,
        api_key_lookup: ApiKeyLookup | None = None,
        *,
        integration_role: Role = "operator",
    ) -> None:
        self._settings = settings
        self._lookup = api_key_lookup
        # Integrations write EHR data for their one clinic, which is operator-level work.
        self._integration_role: Role = integration_role

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
            settings = self._settings
            return decode_staff_token(
                token.strip(),
                settings.revisit_jwt_secret,
                issuer=settings.revisit_jwt_issuer,
                audience=settings.revisit_jwt_audience,
            )
        raise AuthError(401, f"missing credentials: send a bearer token or {API_KEY_HEADER}")

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
) -> Authenticator:
    return Authenticator(settings, api_key_lookup, integration_role=integration_role)


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
Admin = Annotated[Principal, Depends(require_role("admin"))]
