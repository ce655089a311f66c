"""The messenger's API: the staff inbox, a patient's conversation, contact and consent, and the
templates with their lint result and approval."""

from __future__ import annotations

import abc
from typing import Any
from urllib.parse import quote

from services.console.adapters.base import ApiError, HttpService

INBOX_LIMIT = 60  # red flags and the longest waiting first


def _pk(patient_key: str) -> str:
    return quote(patient_key, safe=":")


class MessengerApi(abc.ABC):
    @abc.abstractmethod
    async def inbox(self, token: str, clinic_id: str, view: str) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def inbox_conversation(self, token: str, patient_key: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def reply(
        self, token: str, patient_key: str, body: str, reply_key: str, mark_handled: bool
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def mark_handled(self, token: str, patient_key: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def assign(self, token: str, patient_key: str, to: str | None) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def conversation(self, token: str, patient_key: str) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def consent(self, token: str, patient_key: str) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def contact(self, token: str, patient_key: str) -> dict[str, Any] | None:
        """The contact card; None when the messenger has none."""

    @abc.abstractmethod
    async def templates(self, token: str, clinic_id: str) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def lint(self, token: str, template: dict[str, Any]) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def approve(self, token: str, template_id: int) -> dict[str, Any]: ...


class HttpMessengerApi(HttpService, MessengerApi):
    service = "messenger"

    async def inbox(self, token: str, clinic_id: str, view: str) -> list[dict[str, Any]]:
        found = await self.call(
            token, "GET", "/inbox", params={"clinic_id": clinic_id, "view": view}
        )
        return list(found["conversations"])

    async def inbox_conversation(self, token: str, patient_key: str) -> dict[str, Any]:
        return dict(await self.call(token, "GET", f"/inbox/conversations/{_pk(patient_key)}"))

    async def reply(
        self, token: str, patient_key: str, body: str, reply_key: str, mark_handled: bool
    ) -> dict[str, Any]:
        payload = {"body": body, "reply_key": reply_key, "mark_handled": mark_handled}
        path = f"/inbox/conversations/{_pk(patient_key)}/replies"
        return dict(await self.call(token, "POST", path, json=payload))

    async def mark_handled(self, token: str, patient_key: str) -> dict[str, Any]:
        path = f"/inbox/conversations/{_pk(patient_key)}/handled"
        return dict(await self.call(token, "POST", path))

    async def assign(self, token: str, patient_key: str, to: str | None) -> dict[str, Any]:
        path = f"/inbox/conversations/{_pk(patient_key)}/assign"
        return dict(await self.call(token, "POST", path, json={"assigned_to": to}))

    async def conversation(self, token: str, patient_key: str) -> list[dict[str, Any]]:
        found = await self.call(token, "GET", f"/patients/{_pk(patient_key)}/conversation")
        return list(found["messages"])

    async def consent(self, token: str, patient_key: str) -> list[dict[str, Any]]:
        found = await self.call(token, "GET", f"/patients/{_pk(patient_key)}/consent")
        return list(found["ledger"])

    async def contact(self, token: str, patient_key: str) -> dict[str, Any] | None:
        try:
            found = await self.call(token, "GET", f"/patients/{_pk(patient_key)}/contacts")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(found["contact"])

    async def templates(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        found = await self.call(token, "GET", "/templates", params={"clinic_id": clinic_id})
        return list(found["templates"])

    async def lint(self, token: str, template: dict[str, Any]) -> dict[str, Any]:
        return dict(await self.call(token, "POST", "/templates/lint", json=template))

    async def approve(self, token: str, template_id: int) -> dict[str, Any]:
        return dict(await self.call(token, "POST", f"/templates/{int(template_id)}/approve"))
