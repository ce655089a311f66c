"""The sequencer's API: a patient's outreach and staff actions on it, the preview of what would
go out next, and the workflows in force (the steps a segment's patients get)."""

from __future__ import annotations

import abc
from typing import Any
from urllib.parse import quote

from services.console.adapters.base import HttpService


class SequencerApi(abc.ABC):
    @abc.abstractmethod
    async def outreach(self, token: str, patient_key: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def actions(self, token: str, patient_key: str) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def act(
        self, token: str, patient_key: str, action: str, reason: str, note: str
    ) -> dict[str, Any]:
        """Pause, resume or stop the patient's outreach, with a reason."""

    @abc.abstractmethod
    async def preview(self, token: str, clinic_id: str, days: int, limit: int) -> dict[str, Any]:
        """The first ``limit`` steps going out in the next ``days``, with why."""

    @abc.abstractmethod
    async def workflows(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        """The workflows in force for the clinic: which segments each serves, its steps."""


class HttpSequencerApi(HttpService, SequencerApi):
    service = "sequencer"

    async def outreach(self, token: str, patient_key: str) -> dict[str, Any]:
        return dict(
            await self.call(token, "GET", f"/patients/{quote(patient_key, safe=':')}/outreach")
        )

    async def actions(self, token: str, patient_key: str) -> list[dict[str, Any]]:
        path = f"/patients/{quote(patient_key, safe=':')}/outreach/actions"
        return list((await self.call(token, "GET", path))["actions"])

    async def act(
        self, token: str, patient_key: str, action: str, reason: str, note: str
    ) -> dict[str, Any]:
        path = f"/patients/{quote(patient_key, safe=':')}/outreach/{quote(action, safe='')}"
        return dict(await self.call(token, "POST", path, json={"reason": reason, "note": note}))

    async def preview(self, token: str, clinic_id: str, days: int, limit: int) -> dict[str, Any]:
        params = {"clinic_id": clinic_id, "days": days, "limit": limit, "words": "false"}
        return dict(await self.call(token, "GET", "/preview", params=params))

    async def workflows(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        found = await self.call(token, "GET", "/workflows", params={"clinic_id": clinic_id})
        return list(found["workflows"])
