"""The metrics service's reports: the funnel per segment."""

from __future__ import annotations

import abc
from typing import Any

from services.console.adapters.base import HttpService


class MetricsApi(abc.ABC):
    @abc.abstractmethod
    async def segments(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        """One funnel row per segment of the clinic."""


class HttpMetricsApi(HttpService, MetricsApi):
    service = "metrics"

    async def segments(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        found = await self.call(token, "GET", "/reports/segments", params={"clinic_id": clinic_id})
        return list(found["rows"])
