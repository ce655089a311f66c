"""SMART Backend Services (client credentials with a signed JWT assertion), pure parts.

The assertion: ``iss`` = ``sub`` = the client id, ``aud`` = the token endpoint, ``exp`` at most
five minutes ahead, a unique ``jti``, signed RS384 or ES384 with the key the EHR registered
(header ``kid`` names it, ``typ`` is JWT). The token endpoint comes from the server's
``.well-known/smart-configuration``. A token is reused until shortly before it expires.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = timedelta(minutes=5)
REFRESH_MARGIN = timedelta(seconds=60)


class TokenRefused(Exception):
    """The authorisation server refused: ``error`` is its OAuth2 code, never a secret."""

    def __init__(self, error: str, status: int | None = None) -> None:
        super().__init__(f"token refused: {error}" + (f" (http {status})" if status else ""))
        self.error = error
        self.status = status


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: datetime
    scope: str | None = None

    def usable(self, now: datetime, margin: timedelta = REFRESH_MARGIN) -> bool:
        return now < self.expires_at - margin


def client_assertion(
    *,
    client_id: str,
    token_url: str,
    private_key_pem: str,
    algorithm: str,
    key_id: str | None,
    now: datetime,
    jti: str | None = None,
) -> str:
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        # No iat: the spec does not ask for it, and an EHR whose clock runs a little behind
        # would refuse an assertion "issued in the future".
        "exp": int((now + ASSERTION_LIFETIME).timestamp()),
        "jti": jti or uuid.uuid4().hex,
    }
    headers = {"typ": "JWT"}
    if key_id:
        headers["kid"] = key_id
    try:
        return jwt.encode(claims, private_key_pem, algorithm=algorithm, headers=headers)
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        # The key itself never appears in the message.
        raise TokenRefused(f"signing_key_unusable:{type(exc).__name__}") from None


def assertion_form(assertion: str, scope: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        "scope": scope,
    }


def token_endpoint(configuration: Any) -> str:
    """``token_endpoint`` of a smart-configuration document."""
    url = configuration.get("token_endpoint") if isinstance(configuration, dict) else None
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise TokenRefused("smart_configuration_without_token_endpoint")
    return url


def read_token(status: int, body: Any, now: datetime) -> AccessToken:
    """A token response (RFC 6749 5.1), or TokenRefused with the server's error code (5.2)."""
    if not isinstance(body, dict):
        raise TokenRefused("unreadable_token_response", status)
    if status != 200:
        raise TokenRefused(str(body.get("error") or "token_request_failed")[:64], status)
    value, kind = body.get("access_token"), str(body.get("token_type") or "")
    if not isinstance(value, str) or not value or kind.lower() != "bearer":
        raise TokenRefused("token_response_without_bearer_token", status)
    lifetime = body.get("expires_in")
    seconds = int(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 300
    scope = body.get("scope") if isinstance(body.get("scope"), str) else None
    return AccessToken(value, now + timedelta(seconds=seconds), scope)
