"""A small FHIR R4 client over httpx for one EHR connection: read, search, conditional create.

It adds the token from the connection's TokenSource and, when the EHR answers 401 (a token
revoked or expired early), fetches a new token and tries once more. Network errors and 5xx
answers raise ``EhrUnavailable`` (the caller retries later); other answers are returned.
Messages name the resource type and status, never a patient's details.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from services.messenger.ehr.auth import TokenSource
from services.messenger.ehr.domain.smart import TokenRefused
from services.messenger.scheduling.base import SchedulingUnavailable

FHIR_JSON = "application/fhir+json"


class EhrUnavailable(SchedulingUnavailable):
    """The EHR could not be reached, answered 5xx, or its authorisation server refused."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    location: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def created_id(self, kind: str) -> str | None:
        if isinstance(self.body, dict) and self.body.get("resourceType") == kind:
            found = self.body.get("id")
            if found:
                return str(found)
        parts = self.location.split("/_history")[0].rstrip("/").split("/")
        return parts[-1] if len(parts) >= 2 and parts[-2] == kind else None


class FhirClient:
    def __init__(self, base_url: str, tokens: TokenSource, http: httpx.AsyncClient) -> None:
        self.base = base_url.rstrip("/")
        self.tokens = tokens
        self.http = http

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Any = None,
        headers: Any = None,
        form: dict[str, str] | None = None,
    ) -> Answer:
        for attempt in (1, 2):
            try:
                auth = await self.tokens.authorization()
            except TokenRefused as exc:
                raise EhrUnavailable(f"authorisation refused: {exc.error}") from None
            sent = {"Accept": FHIR_JSON, **(headers or {})}
            if auth:
                sent["Authorization"] = auth
            if body is not None:
                sent["Content-Type"] = FHIR_JSON
            try:
                response = await self.http.request(
                    method, f"{self.base}/{path}", params=params, json=body, data=form, headers=sent
                )
            except httpx.HTTPError as exc:
                raise EhrUnavailable(f"{path.split('/')[0]}: {type(exc).__name__}") from None
            if response.status_code == 401 and attempt == 1 and auth:
                self.tokens.invalidate()
                continue
            if response.status_code >= 500 or response.status_code == 401:
                raise EhrUnavailable(f"{path.split('/')[0]}: http {response.status_code}")
            try:
                parsed = response.json() if response.content else None
            except ValueError:
                parsed = None
            location = response.headers.get("location") or response.headers.get(
                "content-location", ""
            )
            return Answer(response.status_code, parsed, location)
        raise AssertionError("unreachable")

    async def capability_statement(self) -> Answer:
        return await self._send("GET", "metadata")

    async def read(self, kind: str, resource_id: str) -> Answer:
        return await self._send("GET", f"{kind}/{resource_id}")

    async def search(self, kind: str, params: dict[str, str], *, private: bool = False) -> Answer:
        """``private``: the parameters name a patient (a record number), so they go in a POST
        body (``[kind]/_search``), never in a URL that proxies and HTTP logs keep."""
        if private:
            return await self._send("POST", f"{kind}/_search", form=params)
        return await self._send("GET", kind, params=params)

    async def create(self, kind: str, body: dict[str, Any], *, if_none_exist: str) -> Answer:
        return await self._send("POST", kind, body=body, headers={"If-None-Exist": if_none_exist})

    async def validate(self, body: dict[str, Any]) -> Answer:
        """``$validate`` of a resource Revisit would create (nothing is created)."""
        parameters = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "resource", "resource": body},
                {"name": "mode", "valueCode": "create"},
            ],
        }
        return await self._send("POST", f"{body['resourceType']}/$validate", body=parameters)
