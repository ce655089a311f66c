"""The credential the console forwards to the services for the signed-in person.

Today the services accept one kind of staff credential, the HS256 token signed with the
platform's secret (``shared/auth.py``), so the console mints one per sign-in, for the role and
clinics the sign-in established (a dev sign-in, or the claims of a validated OIDC identity).
That means the console holds the platform's signing secret: whoever controls the console could
mint any token. Once the services validate the identity provider's own tokens (issuer, JWKS),
a ``StaffTokens`` that forwards the person's access token replaces this one and the console
drops the secret.
"""

from __future__ import annotations

import abc
from datetime import timedelta
from typing import Literal

from services.console.domain.staff import Staff
from shared.auth import issue_staff_token


class StaffTokens(abc.ABC):
    @abc.abstractmethod
    def for_staff(self, staff: Staff, ttl: timedelta) -> str:
        """A credential the services accept for ``staff``, valid for ``ttl``."""


class SharedSecretTokens(StaffTokens):
    def __init__(self, secret: str, issuer: str, audience: str) -> None:
        if not secret:
            raise ValueError("staff tokens need REVISIT_JWT_SECRET")
        self._secret, self._issuer, self._audience = secret, issuer, audience

    def for_staff(self, staff: Staff, ttl: timedelta) -> str:
        clinics: list[str] | Literal["*"] = "*" if staff.clinics is None else staff.clinic_list
        return issue_staff_token(
            self._secret,
            subject=staff.subject,
            role=staff.role,  # type: ignore[arg-type]
            clinics=clinics,
            ttl=ttl,
            issuer=self._issuer,
            audience=self._audience,
        )
