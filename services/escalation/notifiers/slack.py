"""Slack incoming webhook: one short line per page, acknowledgement and resolution.

The webhook URL is the credential (anyone holding it can post to the channel), so it is stored
as the notifier's secret and never logged or shown. Slack answers 200 "ok"; 4xx bodies such as
``invalid_payload`` or ``no_service`` mean the request or the hook is wrong.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from services.escalation.domain.model import Action
from services.escalation.notifiers.base import DeliveryResult, Notifier, PageNotice, post

_ICON = {"urgent": ":rotating_light:", "high": ":warning:", "normal": ":bell:", "low": ":bell:"}


def message(notice: PageNotice) -> dict[str, Any]:
    kind = notice.case_type.replace("_", " ")
    link = f" <{notice.case_url}|open the case>" if notice.case_url else ""
    if notice.action is Action.trigger:
        text = (
            f"{_ICON.get(notice.severity, ':bell:')} *{notice.severity.upper()}* {kind}: "
            f"{notice.summary}. Paging `{notice.responder_id}` ({notice.rotation_id}, "
            f"page {notice.attempt}). Case `{notice.escalation_id}`.{link}"
        )
    else:
        done = "acknowledged" if notice.action is Action.acknowledge else "resolved"
        text = f":white_check_mark: Case `{notice.escalation_id}` ({kind}) {done}.{link}"
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


class SlackNotifier(Notifier):
    kind = "slack"

    def __init__(self, client: httpx.AsyncClient, webhook_url: str, *, timeout: float = 5.0):
        self._client = client
        self._url = webhook_url
        self._timeout = timeout

    def __repr__(self) -> str:  # the URL is the secret
        return "SlackNotifier()"

    async def deliver(self, notice: PageNotice) -> DeliveryResult:
        _, failed = await post(
            self._client,
            self._url,
            content=json.dumps(message(notice)).encode(),
            headers={"Content-Type": "application/json"},
            timeout=self._timeout,
        )
        return failed or DeliveryResult.delivered()
