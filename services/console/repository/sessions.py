"""Sessions in sealed cookies.

The session cookie holds who signed in (subject, role, clinics), the credential the console
forwards to the services for them, and the CSRF token every form must echo. It is sealed
(``sealing.Sealer``: encrypted and authenticated), HttpOnly (no script reads it), SameSite=Lax
(no other site's form posts with it) and Secure everywhere but plain HTTP on this machine.

Two short-lived cookies serve the sign-in itself: the sign-in form's CSRF token, and the OIDC
transaction (state, nonce, PKCE verifier) while the person is at the identity provider.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from services.console.domain.staff import Staff
from services.console.sealing import Sealer

SESSION_COOKIE = "revisit_console"
SIGN_IN_COOKIE = "revisit_console_sign_in"
SIGN_IN_TTL_S = 600.0


@dataclass(frozen=True)
class Session:
    staff: Staff
    token: str  # forwarded to the services as the person's credential
    csrf: str

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(str(presented), self.csrf)


class CookieSessions:
    def __init__(self, secret: str, *, secure: bool, ttl_s: float) -> None:
        self._session = Sealer(secret, "session")
        self._sign_in = Sealer(secret, "sign-in")
        self.secure = secure
        self.ttl_s = ttl_s

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )

    # --- the session --------------------------------------------------------------------

    def start(self, response: Response, staff: Staff, token: str) -> Session:
        session = Session(staff, token, secrets.token_urlsafe(32))
        doc = {
            "sub": staff.subject,
            "role": staff.role,
            "clinics": staff.clinic_list if staff.clinics is not None else "*",
            "via": staff.via,
            "token": token,
            "csrf": session.csrf,
        }
        self._set(response, SESSION_COOKIE, self._session.seal(doc, self.ttl_s), int(self.ttl_s))
        return session

    def load(self, request: Request) -> Session | None:
        doc = self._session.open(request.cookies.get(SESSION_COOKIE))
        if doc is None:
            return None
        try:
            clinics = doc["clinics"]
            staff = Staff(
                str(doc["sub"]),
                str(doc["role"]),
                None if clinics == "*" else frozenset(str(c) for c in clinics),
                via=str(doc.get("via", "dev")),
            )
            return Session(staff, str(doc["token"]), str(doc["csrf"]))
        except (KeyError, TypeError, ValueError):
            return None

    def end(self, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=self.secure, httponly=True, samesite="lax"
        )

    # --- while signing in ---------------------------------------------------------------

    def stash(self, response: Response, value: dict[str, Any]) -> None:
        sealed = self._sign_in.seal(value, SIGN_IN_TTL_S)
        self._set(response, SIGN_IN_COOKIE, sealed, int(SIGN_IN_TTL_S))

    def stashed(self, request: Request) -> dict[str, Any] | None:
        return self._sign_in.open(request.cookies.get(SIGN_IN_COOKIE))

    def unstash(self, response: Response) -> None:
        response.delete_cookie(
            SIGN_IN_COOKIE, path="/", secure=self.secure, httponly=True, samesite="lax"
        )
