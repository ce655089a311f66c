"""The metrics service's reports: the funnel per segment, and a pilot's report (both arms, the
comparisons with their intervals, the weeks, the objections with references to replies)."""

from __future__ import annotations

import abc
from typing import Any
from urllib.parse import quote

from services.console.adapters.base import ApiError, HttpService

EXAMPLES = 3  # example replies per barrier: enough to hear the patients, few enough to read


class MetricsApi(abc.ABC):
    @abc.abstractmethod
    async def segments(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        """One funnel row per segment of the clinic."""

    @abc.abstractmethod
    async def pilot_report(self, token: str, pilot_id: str) -> dict[str, Any] | None:
        """The pilot's report; None while nobody is assigned (metrics has nothing to count).
        The console asks the sequencer first, which says whether the pilot is the person's."""


class HttpMetricsApi(HttpService, MetricsApi):
    service = "metrics"

    async def segments(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        found = await self.call(token, "GET", "/reports/segments", params={"clinic_id": clinic_id})
        return list(found["rows"])

    async def pilot_report(self, token: str, pilot_id: str) -> dict[str, Any] | None:
        path = f"/reports/pilots/{quote(pilot_id, safe='')}"
        try:
            found = await self.call(token, "GET", path, params={"examples": EXAMPLES})
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(found)
