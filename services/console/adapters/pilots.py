"""The sequencer's pilot API: define a pilot (a draft), change or delete the draft, start week 1,
the preview of who the cohort takes and why, the week-by-week review with its checklists, the
decision that ends each week, and closing. The comparisons are the metrics service's
(``MetricsApi.pilot_report``)."""

from __future__ import annotations

import abc
from typing import Any
from urllib.parse import quote

from services.console.adapters.base import HttpService

PREVIEW_LIMIT = 200  # the preview's rows on one page; the counts cover everyone


def _pilot(pilot_id: str) -> str:
    return f"/pilots/{quote(pilot_id, safe='')}"


class PilotsApi(abc.ABC):
    @abc.abstractmethod
    async def pilots(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        """The clinic's pilots with their week and phase."""

    @abc.abstractmethod
    async def pilot(self, token: str, pilot_id: str) -> dict[str, Any]:
        """One pilot with its arms' sizes (404 outside the person's clinics)."""

    @abc.abstractmethod
    async def define(self, token: str, definition: dict[str, Any]) -> dict[str, Any]:
        """A new draft pilot (admin)."""

    @abc.abstractmethod
    async def change(self, token: str, pilot_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a draft (admin)."""

    @abc.abstractmethod
    async def delete(self, token: str, pilot_id: str) -> None:
        """Delete a draft (admin)."""

    @abc.abstractmethod
    async def start(self, token: str, pilot_id: str) -> dict[str, Any]:
        """Week 1 begins (admin): the cohort is screened and held; nobody is messaged."""

    @abc.abstractmethod
    async def close(self, token: str, pilot_id: str) -> dict[str, Any]:
        """No new enrolment; the holdouts' sequences complete (admin)."""

    @abc.abstractmethod
    async def preview(self, token: str, pilot_id: str, verdict: str | None) -> dict[str, Any]:
        """Who the cohort takes (enrolled or held), who not, and why; counts of each."""

    @abc.abstractmethod
    async def review(self, token: str, pilot_id: str) -> dict[str, Any]:
        """Week by week: figures per arm, each week's checklist, the decisions recorded."""

    @abc.abstractmethod
    async def decide(
        self,
        token: str,
        pilot_id: str,
        week: int,
        decision: str,
        checklist: list[str],
        note: str,
    ) -> dict[str, Any]:
        """Record the decision that ends ``week`` (operator; launch and stop: admin)."""


class HttpPilotsApi(HttpService, PilotsApi):
    service = "sequencer"

    async def pilots(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        found = await self.call(token, "GET", "/pilots", params={"clinic_id": clinic_id})
        return list(found["pilots"])

    async def pilot(self, token: str, pilot_id: str) -> dict[str, Any]:
        return dict(await self.call(token, "GET", _pilot(pilot_id)))

    async def define(self, token: str, definition: dict[str, Any]) -> dict[str, Any]:
        return dict(await self.call(token, "POST", "/pilots", json=definition))

    async def change(self, token: str, pilot_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return dict(await self.call(token, "PATCH", _pilot(pilot_id), json=changes))

    async def delete(self, token: str, pilot_id: str) -> None:
        await self.call(token, "DELETE", _pilot(pilot_id))

    async def start(self, token: str, pilot_id: str) -> dict[str, Any]:
        return dict(await self.call(token, "POST", f"{_pilot(pilot_id)}/start"))

    async def close(self, token: str, pilot_id: str) -> dict[str, Any]:
        return dict(await self.call(token, "POST", f"{_pilot(pilot_id)}/close"))

    async def preview(self, token: str, pilot_id: str, verdict: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": PREVIEW_LIMIT}
        if verdict:
            params["verdict"] = verdict
        return dict(await self.call(token, "GET", f"{_pilot(pilot_id)}/preview", params=params))

    async def review(self, token: str, pilot_id: str) -> dict[str, Any]:
        return dict(await self.call(token, "GET", f"{_pilot(pilot_id)}/review"))

    async def decide(
        self,
        token: str,
        pilot_id: str,
        week: int,
        decision: str,
        checklist: list[str],
        note: str,
    ) -> dict[str, Any]:
        body = {"week": week, "decision": decision, "checklist": checklist, "note": note}
        return dict(await self.call(token, "POST", f"{_pilot(pilot_id)}/reviews", json=body))
