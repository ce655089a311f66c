"""A generic webhook for any paging or chat tool: JSON signed with HMAC-SHA256.

Each request carries::

    X-Revisit-Timestamp: 1767225600                 (Unix seconds, wall time when sent)
    X-Revisit-Signature: v1=<hex HMAC-SHA256(secret, f"{timestamp}." + body)>
    Idempotency-Key:     <escalation id>:<action>:<attempt>

The receiver recomputes the HMAC over the exact bytes received, compares in constant time, and
REJECTS a timestamp more than 5 minutes away from its own clock (before or after), so a captured
request cannot be replayed later; within the window, ``Idempotency-Key`` makes a repeat harmless.
``verify_signature`` below is that check, for receivers written in Python.

The timestamp is wall time, never Revisit's controlled clock: the receiver compares it with its
own real clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from services.escalation.notifiers.base import DeliveryResult, Notifier, PageNotice, post

TIMESTAMP_HEADER = "X-Revisit-Timestamp"
SIGNATURE_HEADER = "X-Revisit-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAY_WINDOW_S = 300
SCHEME = "v1"


class SignatureRejected(ValueError):
    """Why a receiver must refuse a webhook request (safe to log: no secret, no body)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def verify_signature(
    secret: str,
    timestamp: str | None,
    body: bytes,
    signature: str | None,
    *,
    now: float | None = None,
    tolerance_s: int = REPLAY_WINDOW_S,
) -> None:
    """Raise ``SignatureRejected`` unless the request is authentic and fresh.

    ``signature`` may list several ``v1=`` values separated by commas (a sender rotating its
    secret signs with both); one match is enough.
    """
    if not timestamp or not signature:
        raise SignatureRejected("missing timestamp or signature header")
    try:
        sent = int(timestamp)
    except ValueError:
        raise SignatureRejected("timestamp is not a whole number of seconds") from None
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s:
        raise SignatureRejected("timestamp outside the replay window")
    expected = sign(secret, timestamp, body)
    offered = [part.strip() for part in signature.split(",")]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise SignatureRejected("signature does not match")


def event_body(notice: PageNotice) -> dict[str, Any]:
    return {
        "type": f"escalation.{notice.action.value}",
        "escalation_id": notice.escalation_id,
        "action": notice.action.value,
        "clinic_id": notice.clinic_id,
        "rotation_id": notice.rotation_id,
        "responder_id": notice.responder_id,
        "attempt": notice.attempt,
        "case_type": notice.case_type,
        "severity": notice.severity,
        "summary": notice.summary,
        "raised_at": notice.raised_at.isoformat(),
        "case_url": notice.case_url,
    }


class WebhookNotifier(Notifier):
    kind = "webhook"

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        secret: str,
        *,
        timeout: float = 5.0,
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._url = url
        self._secret = secret
        self._timeout = timeout
        self._wall_time = wall_time

    def __repr__(self) -> str:
        return "WebhookNotifier()"

    async def deliver(self, notice: PageNotice) -> DeliveryResult:
        body = json.dumps(event_body(notice), separators=(",", ":")).encode()
        timestamp = str(int(self._wall_time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            IDEMPOTENCY_HEADER: notice.idempotency_key,
        }
        _, failed = await post(
            self._client, self._url, content=body, headers=headers, timeout=self._timeout
        )
        return failed or DeliveryResult.delivered()
