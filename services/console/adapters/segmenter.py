"""The segmenter's API: why a patient is in or out of each segment, their care journey, each
clinic's segment parameters and who is about to become due."""

from __future__ import annotations

import abc
from typing import Any
from urllib.parse import quote

from services.console.adapters.base import ApiError, HttpService


class SegmenterApi(abc.ABC):
    @abc.abstractmethod
    async def explain(self, token: str, patient_key: str) -> dict[str, Any] | None:
        """Why the patient is in or out of each segment; None when no journey is recorded."""

    @abc.abstractmethod
    async def journey(self, token: str, patient_key: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    async def segments(self, token: str, clinic_id: str) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def params(self, token: str, clinic_id: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def put_params(
        self, token: str, clinic_id: str, block: str, values: dict[str, Any]
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def preview(
        self, token: str, clinic_id: str, segment: str, days: int
    ) -> dict[str, Any]: ...


class HttpSegmenterApi(HttpService, SegmenterApi):
    service = "segmenter"

    async def _optional(self, token: str, path: str) -> dict[str, Any] | None:
        try:
            return dict(await self.call(token, "GET", path))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def explain(self, token: str, patient_key: str) -> dict[str, Any] | None:
        return await self._optional(token, f"/patients/{quote(patient_key, safe=':')}/segments")

    async def journey(self, token: str, patient_key: str) -> dict[str, Any] | None:
        return await self._optional(token, f"/patients/{quote(patient_key, safe=':')}/journey")

    async def segments(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        found = await self.call(token, "GET", "/segments", params={"clinic_id": clinic_id})
        return list(found["segments"])

    async def params(self, token: str, clinic_id: str) -> dict[str, Any]:
        path = f"/clinics/{quote(clinic_id, safe='')}/segment-params"
        return dict(await self.call(token, "GET", path))

    async def put_params(
        self, token: str, clinic_id: str, block: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        path = f"/clinics/{quote(clinic_id, safe='')}/segment-params/{quote(block, safe='')}"
        return dict(await self.call(token, "PUT", path, json=values))

    async def preview(self, token: str, clinic_id: str, segment: str, days: int) -> dict[str, Any]:
        path = f"/segments/{quote(segment, safe='')}/preview"
        params = {"clinic_id": clinic_id, "days": days, "limit": 50}
        return dict(await self.call(token, "GET", path, params=params))
