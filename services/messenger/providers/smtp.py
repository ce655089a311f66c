"""E-mail over SMTP (aiosmtplib): any relay the practice already uses.

The Message-ID is derived from the idempotency key, so a practice's mail logs can be searched
for it, and replies (``In-Reply-To``) lead back to the message. SMTP cannot be asked whether an
earlier attempt was delivered: an attempt that may have reached the relay (a dropped
connection or a timeout once the transaction began) is marked ``unknown`` for a person and never
re-sent; a refusal the relay stated (a 4xx reply, a refused connection) is safely retried.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from services.messenger.providers.base import (
    MessageProvider,
    Outcome,
    OutgoingMessage,
    Receipt,
    SendResult,
)
from shared.events.common import Channel
from shared.events.messages import FailureReason


def message_id_header(message_id: str, from_address: str) -> str:
    domain = from_address.rpartition("@")[2] or "revisit.invalid"
    return f"<{message_id}@{domain}>"


class SmtpProvider(MessageProvider):
    name = "smtp"
    channels = frozenset({Channel.email})
    concurrency = 4

    def __init__(
        self,
        *,
        host: str,
        port: int,
        from_address: str,
        username: str = "",
        password: str = "",
        start_tls: bool = True,
        use_tls: bool = False,
        timeout_s: float = 15.0,
    ) -> None:
        self.host = host
        self.port = port
        self.from_address = from_address
        self.sender = from_address
        self._username = username or None
        self._password = password or None
        self._start_tls = start_tls and not use_tls
        self._use_tls = use_tls
        self._timeout = timeout_s

    def build(self, message: OutgoingMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.from_address
        email["To"] = message.to
        email["Subject"] = message.subject or ""
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = message_id_header(message.message_id, self.from_address)
        email["Reply-To"] = self.from_address
        # One-click unsubscribe for mail clients; the inbound gateway turns it into an opt-out.
        email["List-Unsubscribe"] = f"<mailto:{self.from_address}?subject=unsubscribe>"
        email["Auto-Submitted"] = "auto-generated"
        email.set_content(message.body)
        return email

    async def send(self, message: OutgoingMessage) -> SendResult:
        email = self.build(message)
        try:
            await aiosmtplib.send(
                email,
                hostname=self.host,
                port=self.port,
                username=self._username,
                password=self._password,
                start_tls=self._start_tls,
                use_tls=self._use_tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return SendResult(
                Outcome.rejected, failure=FailureReason.invalid_address, detail=type(exc).__name__
            )
        except aiosmtplib.SMTPConnectError as exc:  # includes connect timeouts: nothing sent
            return SendResult(Outcome.retry, detail=type(exc).__name__)
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 500:
                return SendResult(Outcome.retry, detail=f"smtp {exc.code}")
            failure = (
                FailureReason.invalid_address
                if exc.code in (550, 553)
                else (FailureReason.provider_error)
            )
            return SendResult(Outcome.rejected, failure=failure, detail=f"smtp {exc.code}")
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
            return SendResult(Outcome.ambiguous, detail=type(exc).__name__)
        except OSError as exc:
            return SendResult(Outcome.retry, detail=type(exc).__name__)
        return SendResult.ok(Receipt(self.name, message_id_header(message.message_id, self.sender)))
