"""E-mail pages over SMTP (aiosmtplib): new pages only; acknowledgements are not mailed.

The message says what kind of case waits and links to it; it never names the patient. SMTP
4xx replies and network trouble are retried; a 5xx reply (mailbox refused, relay denied) is not.
"""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from services.escalation.domain.model import Action
from services.escalation.notifiers.base import DeliveryResult, Notifier, PageNotice


def compose(notice: PageNotice, sender: str, recipient: str) -> EmailMessage:
    mail = EmailMessage()
    kind = notice.case_type.replace("_", " ")
    mail["Subject"] = f"[Revisit] {notice.severity.upper()} {kind}: case {notice.escalation_id}"
    mail["From"] = sender
    mail["To"] = recipient
    # The same Message-ID on every retry lets a mail system drop a duplicate.
    mail["Message-ID"] = f"<{notice.idempotency_key.replace(':', '.')}@revisit.invalid>"
    lines = [
        f"{notice.summary}.",
        "",
        f"Severity: {notice.severity}",
        f"Case: {notice.escalation_id} ({kind})",
        f"You are paged for {notice.rotation_id} (page {notice.attempt}).",
        "Acknowledge the case in Revisit so nobody else is paged.",
    ]
    if notice.case_url:
        lines.append(f"Open it: {notice.case_url}")
    mail.set_content("\n".join(lines) + "\n")
    return mail


class EmailNotifier(Notifier):
    kind = "email"
    actions = frozenset({Action.trigger})

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        default_recipient: str | None = None,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        start_tls: bool | None = None,
        timeout: float = 5.0,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._default_recipient = default_recipient
        self._username = username
        self._password = password
        self._use_tls = use_tls
        self._start_tls = start_tls
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"EmailNotifier(host={self._host!r}, port={self._port})"

    async def deliver(self, notice: PageNotice) -> DeliveryResult:
        recipient = notice.responder_email or self._default_recipient
        if not recipient:
            return DeliveryResult.give_up("no e-mail address for the responder or the notifier")
        mail = compose(notice, self._sender, recipient)
        try:
            await aiosmtplib.send(
                mail,
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._use_tls,
                start_tls=self._start_tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({int(r.code) for r in exc.recipients}) or [550]
            detail = "smtp recipient refused " + ",".join(str(c) for c in codes)
            permanent = all(c >= 500 for c in codes)
            return DeliveryResult.give_up(detail) if permanent else DeliveryResult.retry(detail)
        except aiosmtplib.SMTPResponseException as exc:
            code = int(exc.code)
            detail = f"smtp {code}"
            return DeliveryResult.give_up(detail) if code >= 500 else DeliveryResult.retry(detail)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return DeliveryResult.retry(f"smtp error: {type(exc).__name__}")
        return DeliveryResult.delivered(mail["Message-ID"])
