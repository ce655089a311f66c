"""The e-mail notifier against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from services.escalation.domain import Action
from services.escalation.notifiers import PageNotice
from services.escalation.notifiers.email import EmailNotifier


@dataclass
class Mailbox:
    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    refuse_with: str | None = None  # an SMTP reply to give at DATA instead of accepting

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_with:
            return self.refuse_with
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def notice(email: str | None = "dr.a@clinic.test") -> PageNotice:
    return PageNotice(
        page_id=1,
        escalation_id="esc-mail-1",
        action=Action.trigger,
        clinic_id="clinic-m",
        rotation_id="nurse-line",
        responder_id="rn-1",
        attempt=2,
        case_type="clinical_question",
        severity="high",
        summary="Patient asks a question about wound care after a procedure",
        raised_at=datetime(2026, 3, 4, 15, 0, tzinfo=UTC),
        case_url="http://127.0.0.1:8005/cases/esc-mail-1",
        responder_email=email,
    )


def notifier(port: int, **kw: Any) -> EmailNotifier:
    return EmailNotifier(
        host="127.0.0.1", port=port, sender="pager@clinic.test", start_tls=False, timeout=2.0, **kw
    )


async def test_a_page_is_mailed_to_the_responder_with_the_case_and_a_link(
    smtp: tuple[Mailbox, int],
) -> None:
    box, port = smtp
    box.messages.clear()
    result = await notifier(port, default_recipient="desk@clinic.test").deliver(notice())
    assert result.ok
    [(recipients, mail)] = box.messages
    assert recipients == ["dr.a@clinic.test"]
    assert mail["Subject"] == "[Revisit] HIGH clinical question: case esc-mail-1"
    assert mail["Message-ID"] == "<esc-mail-1.trigger.2@revisit.invalid>" == result.provider_ref
    body = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "wound care" in body and "http://127.0.0.1:8005/cases/esc-mail-1" in body
    assert "page 2" in body


async def test_without_a_responder_address_the_notifiers_default_recipient_is_used(
    smtp: tuple[Mailbox, int],
) -> None:
    box, port = smtp
    box.messages.clear()
    assert (await notifier(port, default_recipient="desk@clinic.test").deliver(notice(None))).ok
    assert box.messages[0][0] == ["desk@clinic.test"]
    nowhere = await notifier(port).deliver(notice(None))
    assert not nowhere.ok and not nowhere.retryable


async def test_a_temporary_smtp_refusal_is_retried_and_a_permanent_one_is_not(
    smtp: tuple[Mailbox, int],
) -> None:
    box, port = smtp
    try:
        box.refuse_with = "451 Try again later"
        later = await notifier(port).deliver(notice())
        box.refuse_with = "554 Transaction failed"
        never = await notifier(port).deliver(notice())
    finally:
        box.refuse_with = None
    assert (later.retryable, later.detail) == (True, "smtp 451")
    assert (never.retryable, never.detail) == (False, "smtp 554")
    assert "clinic.test" not in later.detail + never.detail


async def test_an_unreachable_mail_server_is_retried() -> None:
    result = await notifier(free_port()).deliver(notice())
    assert not result.ok and result.retryable
    assert result.detail.startswith("smtp error")


def test_e_mail_is_told_only_about_new_pages() -> None:
    assert EmailNotifier.actions == frozenset({Action.trigger})
