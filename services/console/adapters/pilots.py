"""Pilots as the sequencer lists them today. Kept apart on purpose: pilots are being reshaped
(phases, cohorts, comparisons), and this client and the one page that uses it are all that
must change then."""

from __future__ import annotations

import abc
from typing import Any
from urllib.parse import quote

from services.console.adapters.base import HttpService


class PilotsApi(abc.ABC):
    @abc.abstractmethod
    async def pilots(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        """The clinic's pilots, each with its arms' sizes."""


class HttpPilotsApi(HttpService, PilotsApi):
    service = "sequencer"

    async def pilots(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        found = await self.call(token, "GET", "/pilots", params={"clinic_id": clinic_id})
        out = []
        for pilot in found["pilots"]:
            detail = await self.call(token, "GET", f"/pilots/{quote(pilot['pilot_id'], safe='')}")
            out.append({**pilot, "arms": detail.get("arms", {})})
        return out
