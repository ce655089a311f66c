"""Who a caller is (a :class:`Principal`), the roles, and the one refusal every route raises.

The roles are a ladder, viewer < operator < admin, plus ``ehr_writer`` outside it: a credential
that may only write EHR facts through ingest (as an integration key does) and reads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from fastapi import HTTPException

Role = Literal["viewer", "operator", "admin", "ehr_writer"]
ROLES: tuple[Role, ...] = get_args(Role)
EHR_WRITER: Role = "ehr_writer"
# ehr_writer ranks below viewer: it reads nothing and is never "operator or higher".
_RANK: dict[str, int] = {"ehr_writer": -1, "viewer": 0, "operator": 1, "admin": 2}

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
        if role == EHR_WRITER:
            return self.role == EHR_WRITER
        return _RANK[self.role] >= _RANK[role]

    @property
    def writes_ehr_facts(self) -> bool:
        """An integration key, or a token given the ehr_writer role on purpose."""
        return self.kind == "integration" or self.role == EHR_WRITER


def require_clinic(principal: Principal, clinic_id: str) -> None:
    """Refuse (403) unless ``principal`` may act on ``clinic_id``."""
    if not principal.may_access(clinic_id):
        raise AuthError(403, NOT_IN_SCOPE)
