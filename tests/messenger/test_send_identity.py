"""Sends exactly once in effect: each send carries a stable identity per (sequence, step,
channel) to its provider, and an ambiguous send is found again by that identity, never by its
body. Against the local Twilio server (tests/messenger/fake_twilio.py) with Smart Encoding on,
so the body Twilio lists differs from the body sent, as it does for a curly apostrophe."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from services.messenger import queue
from services.messenger.context import MessengerContext
from services.messenger.dispatcher import Dispatcher
from services.messenger.outcomes import outgoing_message
from services.messenger.providers.twilio import TwilioProvider, compute_signature
from services.messenger.scheduling.sandbox import SandboxScheduling
from services.messenger.settings import MessengerSettings
from shared.events.common import Channel
from tests.messenger.conftest import PUBLIC_URL, TWILIO_TOKEN, Messenger
from tests.messenger.fake_twilio import SID, TOKEN, FakeTwilio, running_twilio

FROM = "+15005550006"
CURLY = "We\u2019d love to see you back \u2014 reply BOOK to pick a time."


@pytest.fixture
async def twilio(realdata_dir: Path) -> AsyncIterator[FakeTwilio]:
    async with running_twilio(realdata_dir) as fake:
        fake.smart_encoding = True
        yield fake


def _dispatcher(messenger: Messenger, twilio: FakeTwilio, callback: str = "") -> Dispatcher:
    provider = TwilioProvider(
        account_sid=SID,
        auth_token=TOKEN,
        from_number=FROM,
        api_base=twilio.base_url,
        status_callback=callback,
        timeout_s=0.5,
    )
    ctx = MessengerContext(
        settings=MessengerSettings(lease_seconds=2.0, sms_rate_per_second=1000),
        providers={"twilio": provider},
        scheduling=SandboxScheduling(messenger.runtime.sessions, "UTC"),
        routes={Channel.sms: "twilio"},
    )
    return Dispatcher(messenger.runtime, ctx)


async def _queue_step(messenger: Messenger) -> tuple[str, str, str]:
    """A step queued for a real patient (so every send-time check passes); (mid, seq, to)."""
    patient_key, to = await messenger.new_patient()
    sequence_id = f"seq-{uuid.uuid4().hex[:10]}"
    mid = queue.step_message_id(f"{sequence_id}:1")
    now = messenger.runtime.clock.now()
    async with messenger.runtime.sessions() as session, session.begin():
        await queue.enqueue(
            session,
            [
                queue.QueuedMessage(
                    message_id=mid,
                    idempotency_key=f"{sequence_id}:1",
                    clinic_id=patient_key.split(":", 1)[0],
                    patient_key=patient_key,
                    kind="step",
                    channel="sms",
                    provider="twilio",
                    sender=FROM,
                    address=to,
                    body=CURLY,
                    created_at=now,
                    sequence_id=sequence_id,
                    step=1,
                    template_key="cancellation_recovery.1",
                    purpose="care",
                    expires_at=now + timedelta(days=1),
                )
            ],
        )
    return mid, sequence_id, to


async def _row(messenger: Messenger, mid: str) -> dict[str, Any]:
    [row] = await messenger.rows("SELECT * FROM messenger.outgoing WHERE message_id = :m", m=mid)
    return row


async def test_the_identity_of_a_step_is_its_sequence_step_and_channel(
    messenger: Messenger,
) -> None:
    mid, sequence_id, _ = await _queue_step(messenger)
    message = outgoing_message(await _row(messenger, mid))
    async with messenger.runtime.sessions() as session, session.begin():
        await queue.cancel_sequence(session, sequence_id)  # not for the other tests' Twilio
    assert message.idempotency_key == f"{sequence_id}:1:sms"


async def test_a_send_twilio_took_is_found_by_its_identity_though_twilio_changed_its_body(
    messenger: Messenger, twilio: FakeTwilio
) -> None:
    dispatcher = _dispatcher(messenger, twilio)
    try:
        mid, _, to = await _queue_step(messenger)
        twilio.script[:] = ["hang-after"]  # Twilio took it; the answer never came back
        await dispatcher.dispatch_once()
        assert (await _row(messenger, mid))["status"] == "sending"
        await asyncio.sleep(0.6)  # the ambiguity grace
        await dispatcher.reconcile_once()
        await dispatcher.dispatch_once()
        row = await _row(messenger, mid)
        created = twilio.created_for(to)
        assert len(created) == 1, "sent twice"
        assert row["status"] == "sent" and row["provider_message_id"] == created[0]["sid"]
    finally:
        for provider in dispatcher.ctx.providers.values():
            await provider.close()


async def test_a_status_callback_names_the_send_and_settles_it_without_a_second_send(
    messenger: Messenger, twilio: FakeTwilio
) -> None:
    dispatcher = _dispatcher(messenger, twilio, callback=f"{PUBLIC_URL}/webhooks/twilio/status")
    try:
        mid, sequence_id, to = await _queue_step(messenger)
        twilio.script[:] = ["hang-after"]
        await dispatcher.dispatch_once()
        [(url, form)] = twilio.callbacks
        assert parse_qs(urlparse(url).query)["ref"] == [f"{sequence_id}:1:sms"]

        signature = compute_signature(TWILIO_TOKEN, url, sorted(form.items()))
        answer = await messenger.client.post(
            urlparse(url).path + "?" + urlparse(url).query,
            content=urlencode(form),
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "x-twilio-signature": signature,
            },
        )
        assert answer.status_code == 204, answer.text
        row = await _row(messenger, mid)
        assert row["status"] == "sent" and row["provider_message_id"] == form["MessageSid"]
        claim = await messenger.scalar(
            "SELECT outcome FROM messenger.sends WHERE sequence_id = :s", s=sequence_id
        )
        assert claim in (None, "sent")

        await asyncio.sleep(0.6)
        await dispatcher.reconcile_once()
        await dispatcher.dispatch_once()
        assert len(twilio.created_for(to)) == 1
    finally:
        for provider in dispatcher.ctx.providers.values():
            await provider.close()
