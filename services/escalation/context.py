"""What escalation's handlers, timers and routes share: the service's typed context."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from services.escalation.workflow import Escalation


@dataclass
class EscalationContext:
    escalation: Escalation
    # The notifiers' HTTP client (PagerDuty, Slack, webhooks); closed after the pager stops.
    http: httpx.AsyncClient

    async def aclose(self) -> None:
        await self.http.aclose()
