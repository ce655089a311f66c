"""Replies in: the Twilio webhook, status callbacks, e-mail replies and the sandbox; keywords,
red flags, clinical questions and the scheduling conversation, against the running service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from services.messenger import leases, queue
from services.messenger.providers.twilio import compute_signature
from shared.events.escalations import CaseType, EscalationRaised, Severity
from shared.events.messages import (
    BookingRequested,
    FailureReason,
    MessageFailed,
    OptedOut,
    RecordedVia,
    ReplyIntent,
    ReplyReceived,
)
from shared.topics import ESCALATIONS, MESSAGES, REPLIES
from tests.messenger.conftest import (
    EMAIL_SECRET,
    PUBLIC_URL,
    TWILIO_TOKEN,
    Messenger,
    envelope,
    send_step,
    types_of,
    wait_for,
)

PRACTICE_NUMBER = "+15005550006"


async def twilio_post(
    messenger: Messenger, path: str, form: dict[str, str], signature: str | None = None
) -> Any:
    pairs = list(form.items())
    signature = signature or compute_signature(TWILIO_TOKEN, PUBLIC_URL + path, pairs)
    return await messenger.client.post(
        path,
        content=urlencode(pairs),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": signature,
        },
    )


def sms_form(sender: str, body: str, sid: str | None = None) -> dict[str, str]:
    sid = sid or "SM" + uuid.uuid4().hex
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": "AC" + "1" * 32,
        "From": sender,
        "To": PRACTICE_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
        "FromCountry": "US",
    }


async def test_a_signed_twilio_reply_is_stored_before_the_2xx_and_stored_once(
    messenger: Messenger,
) -> None:
    patient_key, number = await messenger.new_patient()
    form = sms_form(number, "STOP")
    response = await twilio_post(messenger, "/webhooks/twilio/sms", form)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    stored = await messenger.rows(
        "SELECT patient_key, body, intent FROM messenger.inbound WHERE provider_message_id = :s",
        s=form["MessageSid"],
    )
    assert stored == [{"patient_key": patient_key, "body": "STOP", "intent": "opt_out"}]
    again = await twilio_post(messenger, "/webhooks/twilio/sms", form)  # Twilio retries
    assert again.status_code == 200
    assert (
        await messenger.scalar(
            "SELECT count(*) FROM messenger.inbound WHERE provider_message_id = :s",
            s=form["MessageSid"],
        )
        == 1
    )


async def test_an_unsigned_or_forged_twilio_request_is_refused(messenger: Messenger) -> None:
    _, number = await messenger.new_patient()
    form = sms_form(number, "STOP")
    forged = await twilio_post(messenger, "/webhooks/twilio/sms", form, signature="Zm9yZ2Vk")
    assert forged.status_code == 403
    tampered = compute_signature(
        TWILIO_TOKEN, PUBLIC_URL + "/webhooks/twilio/sms", list({**form, "Body": "START"}.items())
    )
    assert (await twilio_post(messenger, "/webhooks/twilio/sms", form, tampered)).status_code == 403
    assert (
        await messenger.scalar(
            "SELECT count(*) FROM messenger.inbound WHERE provider_message_id = :s",
            s=form["MessageSid"],
        )
        == 0
    )


async def test_stop_opts_out_with_one_confirmation_and_nothing_after(messenger: Messenger) -> None:
    patient_key, number = await messenger.new_patient()
    first = sms_form(number, "STOP")
    await twilio_post(messenger, "/webhooks/twilio/sms", first)
    await twilio_post(messenger, "/webhooks/twilio/sms", sms_form(number, "stop"))
    [confirmation] = await messenger.outbound(patient_key, 1)
    assert "unsubscribed" in confirmation["body"] and "START" in confirmation["body"]
    events = await messenger.events(
        REPLIES.name, patient_key, lambda es: "OptedOut" in types_of(es)
    )
    [opted] = [e.payload for e in events if isinstance(e.payload, OptedOut)]
    assert opted.recorded_via is RecordedVia.reply_keyword
    assert opted.source_message_id == await messenger.scalar(
        "SELECT message_id FROM messenger.inbound WHERE provider_message_id = :s",
        s=first["MessageSid"],
    )
    await messenger.handle("commands", envelope(send_step(workflow="follow_up"), patient_key))
    await wait_for(
        lambda: messenger.scalar(
            "SELECT count(*) = 0 FROM messenger.outgoing WHERE patient_key = :pk "
            "AND status IN ('queued', 'sending')",
            pk=patient_key,
        )
    )
    assert len(await messenger.outbound(patient_key, 1)) == 1  # still only the confirmation


async def test_help_answers_with_the_practice_and_rates(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient()
    assert (await messenger.reply(patient_key, "HELP"))["understood_as"] == "help"
    [answer] = await messenger.outbound(patient_key, 1)
    assert "Msg & data rates may apply" in answer["body"]
    assert "your dermatology practice" in answer["body"]


async def test_a_red_flag_pages_urgently_with_a_safety_answer_and_no_words_in_events(
    messenger: Messenger,
) -> None:
    patient_key, _ = await messenger.new_patient()
    await messenger.handle("commands", envelope(send_step(), patient_key))
    await messenger.outbound(patient_key, 1)
    words = "the biopsy site keeps bleeding through the bandage"
    assert (await messenger.reply(patient_key, words))["understood_as"] == "red_flag"
    cases = await messenger.events(
        ESCALATIONS.name, patient_key, lambda es: "EscalationRaised" in types_of(es)
    )
    [case] = [e.payload for e in cases]
    assert isinstance(case, EscalationRaised)
    assert case.case_type is CaseType.red_flag and case.severity is Severity.urgent
    answers = await messenger.outbound(patient_key, 2)
    assert "911" in answers[-1]["body"] and "emergency" in answers[-1]["body"]
    replies = await messenger.events(REPLIES.name, patient_key, lambda es: bool(es))
    for event in [*cases, *replies]:
        assert "bleeding through" not in event.to_bytes().decode()
    [received] = [e.payload for e in replies if isinstance(e.payload, ReplyReceived)]
    assert received.intent is ReplyIntent.red_flag and received.sequence_id is not None


async def test_a_clinical_question_is_routed_to_a_person_and_not_answered(
    messenger: Messenger,
) -> None:
    patient_key, _ = await messenger.new_patient()
    await messenger.reply(patient_key, "Should I keep using the cream twice a day?")
    cases = await messenger.events(
        ESCALATIONS.name, patient_key, lambda es: "EscalationRaised" in types_of(es)
    )
    assert [e.payload.case_type for e in cases] == [CaseType.clinical_question]
    [answer] = await messenger.outbound(patient_key, 1)
    assert "we do not give medical advice by text" in answer["body"]


async def test_book_offers_three_slots_and_a_choice_requests_the_booking(
    messenger: Messenger,
) -> None:
    patient_key, _ = await messenger.new_patient()
    await messenger.handle("commands", envelope(send_step(), patient_key))
    await messenger.outbound(patient_key, 1)
    await messenger.reply(patient_key, "BOOK")
    offer = (await messenger.outbound(patient_key, 2))[-1]
    assert "1)" in offer["body"] and "3)" in offer["body"] and "Reply 1, 2 or 3" in offer["body"]
    assert (await messenger.reply(patient_key, "2"))["understood_as"] == "choose_slot"
    confirmation = (await messenger.outbound(patient_key, 3))[-1]
    assert confirmation["body"].startswith("Thank you! We have requested")
    events = await messenger.events(
        REPLIES.name, patient_key, lambda es: "BookingRequested" in types_of(es)
    )
    [booking] = [e.payload for e in events if isinstance(e.payload, BookingRequested)]
    assert booking.slot_id.startswith(f"sbx-{patient_key.split(':')[0]}-dr-1-")
    assert booking.provider_id == "dr-1" and booking.sequence_id is not None
    assert (
        await messenger.scalar(
            "SELECT count(*) FROM messenger.sandbox_bookings WHERE slot_id = :s", s=booking.slot_id
        )
        == 1
    )


async def test_a_reply_from_an_unknown_number_is_kept_for_staff_and_does_nothing(
    messenger: Messenger,
) -> None:
    form = sms_form("+15550000000", "who is this")
    assert (await twilio_post(messenger, "/webhooks/twilio/sms", form)).status_code == 200
    assert await messenger.scalar(
        "SELECT patient_key IS NULL FROM messenger.inbound WHERE provider_message_id = :s",
        s=form["MessageSid"],
    )


async def test_status_callbacks_report_delivery_failures_once(messenger: Messenger) -> None:
    patient_key, number = await messenger.new_patient()
    mid, sid = str(uuid.uuid4()), "SM" + uuid.uuid4().hex
    async with messenger.runtime.sessions() as session, session.begin():
        await queue.enqueue(
            session,
            [
                queue.QueuedMessage(
                    message_id=mid,
                    idempotency_key=f"seq-{mid}:1",
                    clinic_id=patient_key.split(":")[0],
                    patient_key=patient_key,
                    kind="step",
                    channel="sms",
                    provider="twilio",
                    sender=PRACTICE_NUMBER,
                    address=number,
                    body="x",
                    created_at=datetime.now(UTC),
                    sequence_id=f"seq-{mid}",
                    step=1,
                    template_key="follow_up.1",
                    purpose="care",
                )
            ],
        )
        await leases.mark(session, [mid], "sent")
        from sqlalchemy import text

        await session.execute(
            text("UPDATE messenger.outgoing SET provider_message_id = :s WHERE message_id = :m"),
            {"s": sid, "m": mid},
        )
    form = {
        "MessageSid": sid,
        "MessageStatus": "undelivered",
        "ErrorCode": "30006",
        "AccountSid": "AC" + "1" * 32,
        "From": PRACTICE_NUMBER,
        "To": number,
    }
    assert (await twilio_post(messenger, "/webhooks/twilio/status", form)).status_code == 204
    assert (await twilio_post(messenger, "/webhooks/twilio/status", form)).status_code == 204
    events = await messenger.events(MESSAGES.name, patient_key, lambda es: bool(es))
    [failed] = [e.payload for e in events if isinstance(e.payload, MessageFailed)]
    assert failed.failure is FailureReason.invalid_address and failed.permanent


async def test_an_email_reply_unsubscribes_by_email(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient(email="Ana.Reply@patients.example")
    body = {
        "message_id": f"<{uuid.uuid4()}@mail.example>",
        "from": "Ana <ana.reply@patients.example>",
        "to": "care@lakeside.example",
        "subject": "Re: Your skin check",
        "text": "unsubscribe\n\nOn Tue, Lakeside wrote:\n> Hi",
    }
    refused = await messenger.client.post("/webhooks/email/inbound", json=body)
    assert refused.status_code == 401
    ok = await messenger.client.post(
        "/webhooks/email/inbound", json=body, headers={"x-revisit-email-secret": EMAIL_SECRET}
    )
    assert ok.status_code == 200 and ok.json()["matched"]
    assert await messenger.scalar(
        "SELECT opted_out_email AND NOT opted_out_sms FROM messenger.contacts "
        "WHERE patient_key = :pk",
        pk=patient_key,
    )
