"""A revocation holds in the messenger itself, against the running service: the sequence it
answers sends nothing more on any channel, whether the next step is decided after it (the
send-time check) or was already queued and is being dispatched (the dispatcher's re-check),
and whatever the sequencer's own stop is doing. Other channels' consent stays as it was; the
patient gets exactly one confirmation, on the channel they used."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from services.messenger import handlers, leases
from services.messenger.context import MessengerContext
from services.messenger.dispatcher import CycleStats, Dispatcher
from services.messenger.providers.sandbox import SandboxProvider
from shared.events.common import Channel
from shared.outreach_policy import DEFAULT_POLICY
from tests.messenger.conftest import Messenger, delivery, envelope, send_step, wait_for

# The clinic's policy without frequency caps: step 2 falls due days after step 1 in a real
# sequence, so the caps are not what stops it there, and must not be what stops it here.
UNCAPPED = DEFAULT_POLICY.model_copy(update={"per_day": 0, "per_week": 0})


async def _commands(messenger: Messenger, ctx: MessengerContext, *events: Any) -> None:
    async with messenger.runtime.sessions() as session, session.begin():
        await handlers.commands_handler(messenger.runtime, ctx)(
            session, [delivery(e) for e in events]
        )


async def _patient(messenger: Messenger) -> tuple[str, str]:
    email = f"p{uuid.uuid4().hex[:8]}@example.test"
    return await messenger.new_patient(email=email)


async def _settled(messenger: Messenger, patient_key: str) -> None:
    assert await wait_for(
        lambda: messenger.scalar(
            "SELECT count(*) = 0 FROM messenger.outgoing WHERE patient_key = :pk "
            "AND status IN ('queued', 'sending')",
            pk=patient_key,
        )
    )


async def _step_messages(messenger: Messenger, sequence_id: str) -> list[dict[str, Any]]:
    return await messenger.rows(
        "SELECT step, channel, status FROM messenger.outgoing WHERE sequence_id = :s "
        "AND kind = 'step' ORDER BY step",
        s=sequence_id,
    )


async def test_a_text_revocation_stops_the_next_step_going_out_by_email(
    messenger: Messenger,
) -> None:
    """The leak: "please stop texting me" arrives as step 2 falls due; before the sequencer's
    stop arrives, step 2 (SMS, e-mail fallback) used to go out by e-mail."""
    patient_key, _ = await _patient(messenger)
    sequence = f"seq-{uuid.uuid4().hex[:10]}"
    first = send_step(sequence, 1, channel="sms", fallback="email")
    await messenger.handle("commands", envelope(first, patient_key))
    await messenger.outbound(patient_key, 1)
    assert (await messenger.reply(patient_key, "please stop texting me"))["understood_as"] == (
        "opt_out"
    )
    second = send_step(sequence, 2, channel="sms", fallback="email", policy=UNCAPPED)
    await _commands(messenger, messenger.ctx, envelope(second, patient_key))
    await _settled(messenger, patient_key)

    sent = [m for m in await messenger.sandbox(patient_key) if m["direction"] == "outbound"]
    assert [m["channel"] for m in sent] == ["sms", "sms"]  # step 1, then the one confirmation
    assert "unsubscribed" in sent[-1]["body"] and "another way" in sent[-1]["body"]
    received = await messenger.scalar(
        "SELECT received_at FROM messenger.inbound WHERE patient_key = :pk", pk=patient_key
    )
    assert (sent[-1]["sent_at"] - received).total_seconds() < 300  # within five minutes
    assert [s["step"] for s in await _step_messages(messenger, sequence)] == [1]
    card = await messenger.rows(
        "SELECT opted_out_sms, opted_out_email FROM messenger.contacts WHERE patient_key = :pk",
        pk=patient_key,
    )
    assert card == [{"opted_out_sms": True, "opted_out_email": False}]  # e-mail as it was


async def test_a_step_already_queued_by_email_is_refused_at_the_dispatchers_last_check(
    messenger: Messenger,
) -> None:
    """Step 2 was decided (queued for e-mail) and a dispatcher has just locked it when the
    revocation commits: the re-check before the provider call must refuse it."""
    patient_key, _ = await _patient(messenger)
    sequence = f"seq-{uuid.uuid4().hex[:10]}"
    await messenger.handle("commands", envelope(send_step(sequence, 1), patient_key))
    await messenger.outbound(patient_key, 1)

    # A provider only this test's dispatcher serves, so the service's own dispatcher leaves the
    # queued e-mail alone until this test takes it.
    class Held(SandboxProvider):
        name = "held"

    held = Held(messenger.runtime.sessions, messenger.runtime.clock)
    ctx = replace(
        messenger.ctx,
        providers={**messenger.ctx.providers, "held": held},
        routes={**messenger.ctx.routes, Channel.email: "held"},
    )
    step_2 = send_step(sequence, 2, channel="email", policy=UNCAPPED)
    await _commands(messenger, ctx, envelope(step_2, patient_key))
    dispatcher = Dispatcher(messenger.runtime, replace(ctx, providers={"held": held}))
    async with messenger.runtime.sessions() as session, session.begin():
        rows = await leases.take_queued(session, ["held"], 10)
        assert [r["step"] for r in rows] == [2]
        # The revocation arrives while the row is locked for dispatch (it must not wait on it).
        await messenger.reply(patient_key, "please stop texting me")
        go = await dispatcher._recheck(session, rows, CycleStats())
    assert go == []
    assert await _step_messages(messenger, sequence) == [
        {"step": 1, "channel": "sms", "status": "sent"},
        {"step": 2, "channel": "email", "status": "cancelled"},
    ]
    emails = [m for m in await messenger.sandbox(patient_key) if m["channel"] == "email"]
    assert emails == []


async def test_a_revocation_on_its_own_later_command_sends_nothing_either(
    messenger: Messenger,
) -> None:
    """After "lose my number" the sequence's later steps are refused on every channel, even a
    step the sequencer sends by e-mail before it has heard."""
    patient_key, _ = await _patient(messenger)
    sequence = f"seq-{uuid.uuid4().hex[:10]}"
    await messenger.handle("commands", envelope(send_step(sequence, 1), patient_key))
    await messenger.outbound(patient_key, 1)
    await messenger.reply(patient_key, "lose my number")
    for step in (2, 3):
        cmd = send_step(sequence, step, channel="email", policy=UNCAPPED)
        await _commands(messenger, messenger.ctx, envelope(cmd, patient_key))
    await _settled(messenger, patient_key)
    assert [s["step"] for s in await _step_messages(messenger, sequence)] == [1]
    reason = await messenger.scalar(
        "SELECT reason FROM messenger.cancelled_sequences WHERE sequence_id = :s", s=sequence
    )
    assert reason == "opted_out"


async def test_an_email_revocation_is_confirmed_once_by_email_and_leaves_texts_as_they_were(
    messenger: Messenger,
) -> None:
    patient_key, _ = await _patient(messenger)
    await messenger.reply(patient_key, "please stop emailing me", channel="email")
    await messenger.reply(patient_key, "I said stop emailing me!", channel="email")
    await _settled(messenger, patient_key)
    sent = [m for m in await messenger.sandbox(patient_key) if m["direction"] == "outbound"]
    assert [m["channel"] for m in sent] == ["email"]
    card = await messenger.rows(
        "SELECT opted_out_sms, opted_out_email FROM messenger.contacts WHERE patient_key = :pk",
        pk=patient_key,
    )
    assert card == [{"opted_out_sms": False, "opted_out_email": True}]
