"""The one interface every pager implements (PagerDuty, Slack, e-mail, webhook, sandbox).

A notifier makes ONE delivery attempt and says how it went; the dispatcher owns retries and
back-off. Deliveries must be safe to repeat: each carries the escalation id as its dedup key
(PagerDuty ``dedup_key``, webhook ``Idempotency-Key``), so a retry after a lost answer never
opens a second incident.

What a page carries is the least a responder needs to decide to open the case: the case type,
severity, the fixed-phrase summary, the escalation id and a link to the case in Revisit. Never
the patient key, a name or what the patient wrote.

``DeliveryResult.detail`` is logged and stored: it names a status code or an error class, never
a URL (a Slack webhook URL is itself the secret), a key or a response body.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, ClassVar

import httpx

from services.escalation.domain.model import Action

ALL_ACTIONS = frozenset(Action)


@dataclass(frozen=True)
class PageNotice:
    """What one delivery says. Stored with the delivery row, so a retry says the same thing."""

    page_id: int
    escalation_id: str
    action: Action
    clinic_id: str
    rotation_id: str
    responder_id: str
    attempt: int
    case_type: str
    severity: str
    summary: str
    raised_at: datetime
    case_url: str | None = None
    responder_email: str | None = None

    @property
    def dedup_key(self) -> str:
        return self.escalation_id

    @property
    def idempotency_key(self) -> str:
        return f"{self.escalation_id}:{self.action}:{self.attempt}"

    def snapshot(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("page_id")
        doc["action"] = self.action.value
        doc["raised_at"] = self.raised_at.isoformat()
        return doc

    @classmethod
    def from_snapshot(cls, page_id: int, doc: Mapping[str, Any]) -> PageNotice:
        fields = dict(doc)
        fields["action"] = Action(fields["action"])
        fields["raised_at"] = datetime.fromisoformat(fields["raised_at"])
        return cls(page_id=page_id, **fields)


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    retryable: bool = False
    detail: str = ""
    provider_ref: str | None = None

    @classmethod
    def delivered(cls, provider_ref: str | None = None, detail: str = "") -> DeliveryResult:
        return cls(True, detail=detail, provider_ref=provider_ref)

    @classmethod
    def retry(cls, detail: str) -> DeliveryResult:
        return cls(False, retryable=True, detail=detail)

    @classmethod
    def give_up(cls, detail: str) -> DeliveryResult:
        return cls(False, retryable=False, detail=detail)


class Notifier(abc.ABC):
    kind: ClassVar[str]
    # The actions this notifier is told about; e-mail only announces new pages.
    actions: ClassVar[frozenset[Action]] = ALL_ACTIONS

    @abc.abstractmethod
    async def deliver(self, notice: PageNotice) -> DeliveryResult:
        """Make one delivery attempt; never raises for a provider or network failure."""


RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


async def post(
    client: httpx.AsyncClient,
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109 - httpx's own per-request timeout
) -> tuple[httpx.Response | None, DeliveryResult | None]:
    """POST once; (response, None) on a 2xx, else (response or None, the failed result).

    5xx, 408, 409, 425, 429, timeouts and connection errors are worth retrying; any other 4xx
    means the request itself is wrong and repeating it cannot help.
    """
    try:
        response = await client.post(url, content=content, headers=dict(headers), timeout=timeout)
    except httpx.TimeoutException:
        return None, DeliveryResult.retry("timeout")
    except httpx.TransportError as exc:
        return None, DeliveryResult.retry(f"transport error: {type(exc).__name__}")
    status = response.status_code
    if 200 <= status < 300:
        return response, None
    if status >= 500 or status in RETRYABLE_STATUS:
        return response, DeliveryResult.retry(f"http {status}")
    return response, DeliveryResult.give_up(f"http {status}")
