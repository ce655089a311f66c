"""HS256 staff tokens (the dev stack's and the tests'; refused in production) and the claims
every staff token, HS256 or the identity provider's, is read into a :class:`Principal` by."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import jwt

from shared.principal import _RANK, ALL_CLINICS, AuthError, Principal, Role

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


def _hs256_claims(
    token: str, secret: str, *, issuer: str, audience: str, leeway: timedelta = _LEEWAY
) -> dict[str, Any]:
    if not secret:
        # An empty HMAC key would let anyone forge tokens: refuse them all instead.
        raise AuthError(401, "staff tokens are not accepted by this service")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(401, f"token has no {exc.claim} claim") from None
    except jwt.PyJWTError as exc:
        detail = next((d for kind, d in _TOKEN_ERRORS if isinstance(exc, kind)), "invalid token")
        raise AuthError(401, detail) from None
    return claims


def _clinic_list(raw: object) -> object:
    """An identity provider may give clinics as a list or as ids separated by spaces/commas."""
    if isinstance(raw, str) and raw != ALL_CLINICS:
        return [part for part in raw.replace(",", " ").split() if part]
    return raw


def principal_from_claims(
    claims: dict[str, Any], *, role_claim: str = "role", clinics_claim: str = "clinics"
) -> Principal:
    """Who verified claims speak for; AuthError 401 naming the claim that is wrong (never its
    value)."""
    role, subject = claims.get(role_claim), claims.get("sub")
    if role not in _RANK or not isinstance(subject, str) or not subject:
        raise AuthError(401, "token has an unknown role or subject")
    try:
        scope = _clinic_scope(cast(Role, role), _clinic_list(claims.get(clinics_claim)))
    except ValueError as exc:
        raise AuthError(401, f"token refused: {exc}") from None
    return Principal(kind="staff", subject=subject, role=cast(Role, role), clinics=scope)


def decode_staff_token(token: str, secret: str, *, issuer: str, audience: str) -> Principal:
    """Verify an HS256 staff JWT and return who it speaks for; AuthError 401 saying what is
    wrong. (Lifetime and revocation are the authenticator's checks.)"""
    claims = _hs256_claims(token, secret, issuer=issuer, audience=audience)
    return principal_from_claims(claims)
