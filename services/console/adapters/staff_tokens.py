"""The credential the console forwards for a dev sign-in.

On the dev stack the console signs an HS256 staff token (``shared/auth.py``) for the staff id,
role and clinics typed on its sign-in page. With OpenID Connect it signs nothing: it forwards the
person's own access token from the identity provider (``adapters/oidc.py``), which each service
validates against the provider's keys. Production refuses the dev sign-in and the HS256 secret.
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
