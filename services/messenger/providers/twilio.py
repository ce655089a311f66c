"""Twilio Programmable Messaging over its REST API (httpx), plus webhook signatures.

Sending: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form: To, From or
MessagingServiceSid, Body, StatusCallback), HTTP basic auth with the account SID and auth token.
Twilio has no idempotency key for message creation, so each send carries its identity (one per
sequence, step and channel) in its StatusCallback URL (``?ref=``): Twilio's status callback then
names the send it belongs to, and the webhook binds the message SID to it, even when the create
call's answer was lost. When no callback came, an ambiguous send (a timeout once the request
left, a 5xx) is looked up in the number's recent messages (``GET .../Messages.json?To=&From=``,
newest first) by elimination, never by body (Twilio may re-encode the text it sends): a message
created after the attempt began whose SID no other send of ours holds is this one when it is the
only send to that number in doubt; with several in doubt it cannot tell, and a person checks.

Signatures (``X-Twilio-Signature``): base64(HMAC-SHA1(auth token, URL + every form parameter
name and value, sorted by name then value)); the URL is tried with and without its port, as
Twilio's own validator does. A JSON body is covered by ``bodySHA256`` in the URL instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlparse, urlunparse

import httpx

from services.messenger.providers.base import (
    Lookup,
    LookupHints,
    LookupResult,
    MessageProvider,
    Outcome,
    OutgoingMessage,
    Receipt,
    SendResult,
)
from shared.events.common import Channel
from shared.events.messages import FailureReason

# Twilio error codes (documented on its error dictionary) that settle a message's fate.
UNSUBSCRIBED = 21610  # the recipient replied STOP to this sender
INVALID_TO = {21211, 21614, 21217}  # not a valid / not a mobile number
CARRIER_REFUSED = {21408, 21612, 30007, 21606}
DELIVERY_ERRORS: dict[int, tuple[FailureReason, bool]] = {
    30003: (FailureReason.unreachable, False),
    30004: (FailureReason.carrier_rejected, True),
    30005: (FailureReason.invalid_address, True),
    30006: (FailureReason.invalid_address, True),
    30007: (FailureReason.carrier_rejected, False),
    30008: (FailureReason.unknown, False),
    21610: (FailureReason.carrier_rejected, True),
}


class TwilioProvider(MessageProvider):
    name = "twilio"
    channels = frozenset({Channel.sms})

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str = "",
        messaging_service_sid: str = "",
        api_base: str = "https://api.twilio.com",
        status_callback: str = "",
        timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        self.sender = from_number or messaging_service_sid
        self._base = f"{api_base.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._client = client or httpx.AsyncClient(
            auth=(account_sid, auth_token),
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, message: OutgoingMessage) -> SendResult:
        form = {"To": message.to, "Body": message.body}
        if self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            form["From"] = self.from_number
        if self.status_callback:
            form["StatusCallback"] = callback_url(self.status_callback, message.idempotency_key)
        try:
            response = await self._client.post(self._base, data=form)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            return SendResult(Outcome.retry, detail=type(exc).__name__)  # never left this host
        except httpx.HTTPError as exc:
            return SendResult(Outcome.ambiguous, detail=type(exc).__name__)
        return self._result(response)

    def _result(self, response: httpx.Response) -> SendResult:
        status = response.status_code
        if status in (200, 201):
            sid = str(_json(response).get("sid") or "")
            if not sid:
                return SendResult(Outcome.ambiguous, detail="no sid in response")
            return SendResult.ok(Receipt(self.name, sid))
        code = _int(_json(response).get("code"))
        detail = f"http {status} code {code}" if code else f"http {status}"
        if status == 429:
            retry_after = _float(response.headers.get("retry-after"))
            return SendResult(Outcome.retry, detail=detail, retry_after_s=retry_after)
        if status >= 500:
            return SendResult(
                Outcome.ambiguous, failure=FailureReason.provider_error, detail=detail
            )
        if status in (401, 403):
            return SendResult(Outcome.retry, failure=FailureReason.provider_error, detail=detail)
        if code == UNSUBSCRIBED:
            return SendResult(
                Outcome.rejected,
                failure=FailureReason.carrier_rejected,
                detail=detail,
                recipient_opted_out=True,
            )
        if code in INVALID_TO:
            return SendResult(
                Outcome.rejected, failure=FailureReason.invalid_address, detail=detail
            )
        if code in CARRIER_REFUSED:
            return SendResult(
                Outcome.rejected, failure=FailureReason.carrier_rejected, detail=detail
            )
        return SendResult(Outcome.rejected, failure=FailureReason.provider_error, detail=detail)

    async def lookup(
        self, message: OutgoingMessage, hints: LookupHints | None = None
    ) -> LookupResult:
        hints = hints or LookupHints()
        params = {"To": message.to, "PageSize": "50"}
        if self.from_number and not self.messaging_service_sid:
            params["From"] = self.from_number
        try:
            response = await self._client.get(self._base, params=params)
        except httpx.HTTPError:
            return LookupResult(Lookup.unavailable)
        if response.status_code != 200:
            return LookupResult(Lookup.unavailable)
        since = (message.attempted_at - timedelta(minutes=5)) if message.attempted_at else None
        candidates = []
        for item in _json(response).get("messages") or []:
            sid = str(item.get("sid") or "")
            if not sid or sid in hints.attributed or item.get("direction") == "inbound":
                continue
            created = _rfc2822(item.get("date_created"))
            if since is not None and created is not None and created < since:
                continue
            candidates.append(sid)
        if not candidates:
            return LookupResult(Lookup.not_found)
        if len(candidates) == 1 and hints.in_doubt <= 1:
            return LookupResult(Lookup.found, Receipt(self.name, candidates[0]))
        return LookupResult(Lookup.cannot_tell)


def callback_url(base: str, ref: str) -> str:
    """The status-callback URL for one send: it names the send (``ref``) it reports on."""
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}ref={quote(ref, safe='')}"


def status_callback_outcome(
    status: str, error_code: str | None
) -> tuple[str, FailureReason | None, bool]:
    """Twilio MessageStatus -> ("delivered" | "failed" | "pending", failure, permanent)."""
    if status in ("delivered", "read"):
        return "delivered", None, False
    if status in ("failed", "undelivered", "canceled"):
        code = _int(error_code)
        failure, permanent = DELIVERY_ERRORS.get(code or 0, (FailureReason.unknown, False))
        if status == "canceled":
            failure = FailureReason.provider_error
        return "failed", failure, permanent
    return "pending", None, False


# --- webhook signatures ----------------------------------------------------------------------


def compute_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    payload = url
    grouped: dict[str, list[str]] = {}
    for key, value in params:
        grouped.setdefault(key, []).append(value)
    for key in sorted(grouped):
        for value in sorted(grouped[key]):
            payload += key + value
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _with_port(url: str) -> str:
    parsed = urlparse(url)
    if parsed.port is not None or not parsed.hostname:
        return url
    port = 443 if parsed.scheme == "https" else 80
    netloc = f"{parsed.netloc}:{port}"
    return urlunparse(parsed._replace(netloc=netloc))


def _without_port(url: str) -> str:
    parsed = urlparse(url)
    if parsed.port is None:
        return url
    netloc = parsed.netloc.rsplit(":", 1)[0]
    return urlunparse(parsed._replace(netloc=netloc))


def validate_signature(
    auth_token: str,
    url: str,
    params: Sequence[tuple[str, str]] | str,
    signature: str | None,
) -> bool:
    """True when ``signature`` is Twilio's for this URL and form parameters (or JSON body)."""
    if not signature or not auth_token:
        return False
    body_ok = True
    if isinstance(params, str):  # a JSON body: the URL carries its SHA-256
        expected = parse_qs(urlparse(url).query).get("bodySHA256", [""])[0]
        actual = hashlib.sha256(params.encode()).hexdigest()
        body_ok = hmac.compare_digest(expected.encode(), actual.encode())
        params = []
    candidates = {_without_port(url), _with_port(url)}
    # As bytes: a header may hold any latin-1 text, which compare_digest refuses as str.
    given = signature.encode()
    good = any(
        hmac.compare_digest(compute_signature(auth_token, u, params).encode(), given)
        for u in candidates
    )
    return body_ok and good


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _float(value: object) -> float | None:
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def _rfc2822(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
