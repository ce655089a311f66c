"""What every service client shares: one call with the signed-in user's credential, and one
error type that says which service refused what, in the service's own (PHI-free) words."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx


class ApiError(Exception):
    """A service said no (or did not answer: status 503)."""

    def __init__(self, service: str, status: int, detail: Any) -> None:
        super().__init__(f"{service} answered {status}")
        self.service = service
        self.status = status
        self.detail = detail

    @property
    def words(self) -> str:
        """The refusal as one sentence for staff."""
        detail = self.detail
        if isinstance(detail, dict):
            detail = detail.get("message") or detail.get("reason") or detail
        if isinstance(detail, list):  # a refused request's issues: where, and what is wrong
            detail = "; ".join(
                f"{_field(str(d.get('where', '')))}: {d.get('problem', '')}"
                if isinstance(d, dict)
                else str(d)
                for d in detail
            )
        return str(detail)


def _field(where: str) -> str:
    """``body.window.days`` -> ``window.days``: staff fill in a form, not a request body."""
    for part in ("body.", "query.", "path."):
        if where.startswith(part):
            return where.removeprefix(part)
    return where


class HttpService:
    """The httpx side of a service client: ``call`` as the signed-in user."""

    service: ClassVar[str] = "service"

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")

    async def call(self, token: str, method: str, path: str, **kw: Any) -> Any:
        try:
            response = await self._http.request(
                method,
                self._base + path,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                **kw,
            )
        except httpx.HTTPError:
            raise ApiError(
                self.service, 503, f"the {self.service} service did not answer"
            ) from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            # Every service answers an ErrorBody (shared/errors.py): each issue of an invalid
            # request when there are some, else its one sentence.
            detail = body.get("issues") or body.get("detail") or response.reason_phrase
            raise ApiError(self.service, response.status_code, detail)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()
