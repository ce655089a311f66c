"""PagerDuty Events API v2: trigger, acknowledge and resolve one incident per case.

``dedup_key`` is the escalation id, so the re-pages of one case land on the same PagerDuty
incident (PagerDuty's own escalation policy then pages the people inside PagerDuty), a retry
after a lost 202 is harmless, and Revisit's acknowledgement and resolution close that incident.
The routing (integration) key is a secret: it is read when delivering and never logged.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from services.escalation.domain.model import Action
from services.escalation.notifiers.base import DeliveryResult, Notifier, PageNotice, post

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"

# PagerDuty knows four severities; a red flag is the only thing worth "critical".
SEVERITY = {"urgent": "critical", "high": "error", "normal": "warning", "low": "info"}


def event_body(notice: PageNotice, routing_key: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": notice.action.value,
        "dedup_key": notice.dedup_key,
    }
    if notice.action is not Action.trigger:
        return body  # acknowledge and resolve carry only the key of the incident
    body["payload"] = {
        "summary": f"[{notice.severity}] {notice.summary}",
        "source": f"revisit:{notice.clinic_id}",
        "severity": SEVERITY.get(notice.severity, "warning"),
        "timestamp": notice.raised_at.isoformat(),
        "component": "escalation",
        "group": notice.rotation_id,
        "class": notice.case_type,
        "custom_details": {
            "escalation_id": notice.escalation_id,
            "case_type": notice.case_type,
            "severity": notice.severity,
            "rotation_id": notice.rotation_id,
            "responder_id": notice.responder_id,
            "attempt": notice.attempt,
        },
    }
    body["client"] = "Revisit"
    if notice.case_url:
        body["client_url"] = notice.case_url
        body["links"] = [{"href": notice.case_url, "text": "Open the case in Revisit"}]
    return body


class PagerDutyNotifier(Notifier):
    kind = "pagerduty"

    def __init__(
        self,
        client: httpx.AsyncClient,
        routing_key: str,
        *,
        events_url: str = EVENTS_URL,
        timeout: float = 5.0,
    ) -> None:
        self._client = client
        self._routing_key = routing_key
        self._url = events_url
        self._timeout = timeout

    def __repr__(self) -> str:  # never show the routing key
        return f"PagerDutyNotifier(events_url={self._url!r})"

    async def deliver(self, notice: PageNotice) -> DeliveryResult:
        content = json.dumps(event_body(notice, self._routing_key)).encode()
        response, failed = await post(
            self._client,
            self._url,
            content=content,
            headers={"Content-Type": "application/json"},
            timeout=self._timeout,
        )
        if failed is not None:
            return failed
        assert response is not None
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        ref = answer.get("dedup_key") if isinstance(answer, dict) else None
        return DeliveryResult.delivered(str(ref) if ref else notice.dedup_key)
