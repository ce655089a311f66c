"""Provider contract suite: the same promises checked on the sandbox provider and on Twilio
over a local HTTP server with Twilio's shapes; SMTP against a real local aiosmtpd server; the
dispatcher reconciling ambiguous sends with the provider instead of re-sending blind."""

from __future__ import annotations

import asyncio
import email
import socket
import uuid
from collections.abc import AsyncIterator
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from services.messenger import queue
from services.messenger.context import MessengerContext
from services.messenger.dispatcher import Dispatcher
from services.messenger.providers.base import (
    Lookup,
    MessageProvider,
    Outcome,
    OutgoingMessage,
)
from services.messenger.providers.sandbox import SandboxProvider
from services.messenger.providers.smtp import SmtpProvider
from services.messenger.providers.twilio import TwilioProvider
from services.messenger.scheduling.sandbox import SandboxScheduling
from services.messenger.settings import MessengerSettings
from shared.events.common import Channel
from shared.events.messages import FailureReason
from tests.messenger.conftest import Messenger, new_clinic, phone
from tests.messenger.fake_twilio import SID, TOKEN, FakeTwilio, running_twilio

FROM = "+15005550006"


@pytest.fixture(scope="module")
async def twilio(realdata_dir: Path) -> AsyncIterator[FakeTwilio]:
    async with running_twilio(realdata_dir) as fake:
        yield fake


def twilio_provider(fake: FakeTwilio, timeout_s: float = 2.0) -> TwilioProvider:
    return TwilioProvider(
        account_sid=SID,
        auth_token=TOKEN,
        from_number=FROM,
        api_base=fake.base_url,
        timeout_s=timeout_s,
    )


def outgoing(
    to: str | None = None,
    body: str = "Hi, this is Lakeside. Reply STOP to opt out.",
    channel: Channel = Channel.sms,
) -> OutgoingMessage:
    mid = str(uuid.uuid4())
    clinic = new_clinic()
    return OutgoingMessage(
        message_id=mid,
        idempotency_key=f"seq-{mid}:1",
        clinic_id=clinic,
        patient_key=f"{clinic}:p1",
        channel=channel,
        to=to or phone(),
        body=f"{body} [{mid[:6]}]",
    )


@pytest.fixture(params=["sandbox", "twilio"])
async def provider(
    request: pytest.FixtureRequest, messenger: Messenger, twilio: FakeTwilio
) -> AsyncIterator[MessageProvider]:
    if request.param == "sandbox":
        yield SandboxProvider(messenger.runtime.sessions)
        return
    p = twilio_provider(twilio)
    yield p
    await p.close()


async def provider_has(
    provider: MessageProvider, messenger: Messenger, twilio: FakeTwilio, msg: OutgoingMessage
) -> int:
    if provider.name == "sandbox":
        return int(
            await messenger.scalar(
                "SELECT count(*) FROM messenger.sandbox_messages WHERE idempotency_key = :k",
                k=msg.idempotency_key,
            )
        )
    return len([m for m in twilio.created_for(msg.to) if m["body"] == msg.body])


# --- the contract, on both ------------------------------------------------------------------------


async def test_an_accepted_message_reaches_the_provider_under_its_receipt(
    provider: MessageProvider, messenger: Messenger, twilio: FakeTwilio
) -> None:
    msg = outgoing()
    result = await provider.send(msg)
    assert result.outcome is Outcome.accepted and result.receipt is not None
    assert result.receipt.provider == provider.name and result.receipt.provider_message_id
    assert await provider_has(provider, messenger, twilio, msg) == 1


async def test_lookup_finds_what_was_sent_and_nothing_else(
    provider: MessageProvider, messenger: Messenger, twilio: FakeTwilio
) -> None:
    sent, unsent = outgoing(), outgoing()
    result = await provider.send(sent)
    assert result.receipt is not None
    found = await provider.lookup(sent)
    assert found.answer is Lookup.found and found.receipt is not None
    assert found.receipt.provider_message_id == result.receipt.provider_message_id
    assert (await provider.lookup(unsent)).answer is Lookup.not_found


async def test_a_batch_send_returns_one_result_per_message_in_order(
    provider: MessageProvider, messenger: Messenger, twilio: FakeTwilio
) -> None:
    batch = [outgoing() for _ in range(5)]
    results = await provider.send_many(batch)
    assert [r.outcome for r in results] == [Outcome.accepted] * 5
    for msg in batch:
        assert await provider_has(provider, messenger, twilio, msg) == 1


# --- sandbox specifics ----------------------------------------------------------------------------


async def test_the_sandbox_is_idempotent_per_key(messenger: Messenger) -> None:
    provider = SandboxProvider(messenger.runtime.sessions)
    msg = outgoing()
    first, again = await provider.send(msg), await provider.send(msg)
    assert first.receipt is not None and again.receipt is not None
    assert (
        again.receipt.duplicate
        and again.receipt.provider_message_id == first.receipt.provider_message_id
    )
    assert await provider_has(provider, messenger, FakeTwilio({}), msg) == 1


# --- Twilio specifics -----------------------------------------------------------------------------


async def test_twilio_errors_map_to_outcomes(twilio: FakeTwilio) -> None:
    provider = twilio_provider(twilio)
    try:
        invalid = await provider.send(outgoing(to="5551234"))
        assert invalid.outcome is Outcome.rejected
        assert invalid.failure is FailureReason.invalid_address and "21211" in invalid.detail
        number = phone()
        twilio.unsubscribed.add(number)
        stopped = await provider.send(outgoing(to=number))
        assert stopped.outcome is Outcome.rejected and stopped.recipient_opted_out
        twilio.script[:] = ["429"]
        limited = await provider.send(outgoing())
        assert limited.outcome is Outcome.retry and limited.retry_after_s == 1.0
        twilio.script[:] = ["500-before"]
        assert (await provider.send(outgoing())).outcome is Outcome.ambiguous
    finally:
        await provider.close()


async def test_twilio_timeout_after_the_request_left_is_ambiguous_and_lookup_settles_it(
    twilio: FakeTwilio,
) -> None:
    provider = twilio_provider(twilio, timeout_s=0.5)
    try:
        msg = outgoing()
        twilio.script[:] = ["hang-after"]
        result = await provider.send(msg)
        assert result.outcome is Outcome.ambiguous
        assert (await provider.lookup(msg)).answer is Lookup.found
    finally:
        await provider.close()


async def test_twilio_unreachable_is_a_safe_retry() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there
    provider = TwilioProvider(
        account_sid=SID,
        auth_token=TOKEN,
        from_number=FROM,
        api_base=f"http://127.0.0.1:{port}",
        timeout_s=1.0,
    )
    try:
        assert (await provider.send(outgoing())).outcome is Outcome.retry
        assert (await provider.lookup(outgoing())).answer is Lookup.unavailable
    finally:
        await provider.close()


# --- the dispatcher never re-sends blind ----------------------------------------------------------


async def _queue_one(messenger: Messenger, provider: str, to: str) -> str:
    clinic = new_clinic()
    mid = str(uuid.uuid4())
    async with messenger.runtime.sessions() as session, session.begin():
        await queue.enqueue(
            session,
            [
                queue.QueuedMessage(
                    message_id=mid,
                    idempotency_key=mid,
                    clinic_id=clinic,
                    patient_key=f"{clinic}:p-{mid[:6]}",
                    kind="reply",
                    channel="sms",
                    provider=provider,
                    sender=FROM,
                    address=to,
                    body=f"Msg {mid}",
                    created_at=messenger.runtime.clock.now(),
                    reply_kind="help",
                )
            ],
        )
    return mid


async def _status(messenger: Messenger, mid: str) -> Any:
    return await messenger.scalar(
        "SELECT status FROM messenger.outgoing WHERE message_id = :m", m=mid
    )


@pytest.mark.parametrize(
    ("failure", "created"),
    [("hang-after", 1), ("500-after", 1), ("500-before", 1)],
    ids=["timeout-but-created", "error-but-created", "error-not-created"],
)
async def test_ambiguous_twilio_sends_are_reconciled_and_sent_exactly_once(
    messenger: Messenger, twilio: FakeTwilio, failure: str, created: int
) -> None:
    provider = twilio_provider(twilio, timeout_s=0.5)
    ctx = MessengerContext(
        settings=MessengerSettings(lease_seconds=2.0, sms_rate_per_second=1000),
        providers={"twilio": provider},
        scheduling=SandboxScheduling(messenger.runtime.sessions, "UTC"),
        routes={Channel.sms: "twilio"},
    )
    dispatcher = Dispatcher(messenger.runtime, ctx)
    to = phone()
    try:
        mid = await _queue_one(messenger, "twilio", to)
        twilio.script[:] = [failure]
        await dispatcher.dispatch_once()
        assert await _status(messenger, mid) == "sending"  # not settled, not re-queued
        await asyncio.sleep(0.6)  # the ambiguity grace (a quarter of the lease)
        await dispatcher.reconcile_once()
        await dispatcher.dispatch_once()  # what was not found is sent again, after the checks
        assert await _status(messenger, mid) == "sent"
        assert len(twilio.created_for(to)) == created
    finally:
        await provider.close()


# --- SMTP against a real server -------------------------------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.refuse: set[str] = set()
        self.data_reply: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"


@pytest.fixture(scope="module")
def smtp_server() -> Any:
    box = Mailbox()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def smtp(port: int) -> SmtpProvider:
    return SmtpProvider(
        host="127.0.0.1",
        port=port,
        from_address="care@lakeside.example",
        start_tls=False,
        timeout_s=5,
    )


async def test_smtp_delivers_a_well_formed_email_to_a_real_server(smtp_server: Any) -> None:
    box, port = smtp_server
    msg = outgoing(to="ana@patients.example", channel=Channel.email, body="Hola Ana, ¿cómo está?")
    msg = OutgoingMessage(**{**msg.__dict__, "subject": "Su revisión de piel"})
    result = await smtp(port).send(msg)
    assert result.outcome is Outcome.accepted and result.receipt is not None
    [received] = [m for m in box.messages if msg.message_id in m["Message-ID"]]
    assert received["To"] == "ana@patients.example"
    assert received["Subject"] == "Su revisión de piel"
    assert received["Message-ID"] == f"<{msg.message_id}@lakeside.example>"
    assert received["List-Unsubscribe"].startswith("<mailto:care@lakeside.example")
    assert "¿cómo está?" in received.get_content()


async def test_smtp_refusals_and_outages_map_to_outcomes(smtp_server: Any) -> None:
    box, port = smtp_server
    box.refuse.add("nobody@patients.example")
    refused = await smtp(port).send(outgoing(to="nobody@patients.example", channel=Channel.email))
    assert refused.outcome is Outcome.rejected and refused.failure is FailureReason.invalid_address
    box.data_reply = "451 4.3.0 try again later"
    try:
        later = await smtp(port).send(outgoing(to="ana@patients.example", channel=Channel.email))
        assert later.outcome is Outcome.retry
    finally:
        box.data_reply = None
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    down = await smtp(dead_port).send(outgoing(to="ana@patients.example", channel=Channel.email))
    assert down.outcome is Outcome.retry
    assert (await smtp(port).lookup(outgoing())).answer is Lookup.cannot_tell
