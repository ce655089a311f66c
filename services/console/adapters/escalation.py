"""The escalation service's API: the queue, a case, what staff do with it, and where a new case
would be routed (a pilot's escalation route)."""

from __future__ import annotations

import abc
from typing import Any
from urllib.parse import quote

from services.console.adapters.base import HttpService

QUEUE_LIMIT = 200  # the most severe and oldest first; a longer queue is not read on one screen


class EscalationApi(abc.ABC):
    @abc.abstractmethod
    async def queue(self, token: str, clinic_id: str, state: str = "open") -> list[dict[str, Any]]:
        """Cases of the clinic, in the service's order."""

    @abc.abstractmethod
    async def case(self, token: str, escalation_id: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def notes(self, token: str, escalation_id: str) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def acknowledge(self, token: str, escalation_id: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def add_note(self, token: str, escalation_id: str, note: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def resolve(
        self, token: str, escalation_id: str, outcome: str, note: str, resume_outreach: bool | None
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def patient_cases(self, token: str, patient_key: str) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def route(
        self, token: str, clinic_id: str, case_type: str, severity: str
    ) -> dict[str, Any]:
        """Where a case of this type and severity would go now: the rule, the rotation and
        everyone paged in turn (an empty chain: nobody)."""


class HttpEscalationApi(HttpService, EscalationApi):
    service = "escalation"

    async def queue(self, token: str, clinic_id: str, state: str = "open") -> list[dict[str, Any]]:
        params = {"clinic_id": clinic_id, "state": state, "limit": QUEUE_LIMIT}
        found = await self.call(token, "GET", "/cases", params=params)
        return list(found["cases"])

    async def case(self, token: str, escalation_id: str) -> dict[str, Any]:
        return dict(await self.call(token, "GET", f"/cases/{quote(escalation_id, safe='')}"))

    async def notes(self, token: str, escalation_id: str) -> list[dict[str, Any]]:
        found = await self.call(token, "GET", f"/cases/{quote(escalation_id, safe='')}/notes")
        return list(found["notes"])

    async def acknowledge(self, token: str, escalation_id: str) -> dict[str, Any]:
        path = f"/cases/{quote(escalation_id, safe='')}/acknowledge"
        return dict(await self.call(token, "POST", path))

    async def add_note(self, token: str, escalation_id: str, note: str) -> dict[str, Any]:
        path = f"/cases/{quote(escalation_id, safe='')}/notes"
        return dict(await self.call(token, "POST", path, json={"note": note}))

    async def resolve(
        self, token: str, escalation_id: str, outcome: str, note: str, resume_outreach: bool | None
    ) -> dict[str, Any]:
        body = {"outcome": outcome, "note": note or None, "resume_outreach": resume_outreach}
        path = f"/cases/{quote(escalation_id, safe='')}/resolve"
        return dict(await self.call(token, "POST", path, json=body))

    async def patient_cases(self, token: str, patient_key: str) -> list[dict[str, Any]]:
        found = await self.call(token, "GET", f"/patients/{quote(patient_key, safe=':')}/cases")
        return list(found["cases"])

    async def route(
        self, token: str, clinic_id: str, case_type: str, severity: str
    ) -> dict[str, Any]:
        path = f"/clinics/{quote(clinic_id, safe='')}/routing-rules/preview"
        body = {"case_type": case_type, "severity": severity}
        return dict(await self.call(token, "POST", path, json=body))
