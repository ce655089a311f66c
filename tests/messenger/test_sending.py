"""SendStep -> checks -> queue -> dispatcher -> sandbox, against the running service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from services.messenger.queue import step_message_id
from shared.events.common import EhrSource, Purpose, SourceSystem
from shared.events.ehr import ConsentChanged, ConsentStatus
from shared.events.escalations import (
    CaseType,
    EscalationRaised,
    EscalationResolved,
    Outcome,
    Severity,
)
from shared.events.messages import BlockReason, MessageBlocked, MessageSent
from shared.events.outreach import CancelPendingSends, StopReason
from shared.topics import COMMANDS, EHR_EVENTS, MESSAGES
from tests.messenger.conftest import (
    Messenger,
    envelope,
    night_zone,
    patient_upserted,
    phone,
    send_step,
    types_of,
    wait_for,
)


async def blocked_reasons(messenger: Messenger, patient_key: str, n: int = 1) -> list[Any]:
    events = await messenger.events(
        MESSAGES.name, patient_key, lambda es: sum(e.type == "MessageBlocked" for e in es) >= n
    )
    return [e.payload.reason for e in events if isinstance(e.payload, MessageBlocked)]


async def test_the_walking_skeleton_sends_over_kafka_and_reports_the_send(
    messenger: Messenger,
) -> None:
    clinic = f"clinic-m{uuid.uuid4().hex[:8]}"
    patient_key = f"{clinic}:p-1"
    upserted = envelope(patient_upserted(phone_number=phone()), patient_key)
    command = envelope(send_step(), patient_key)
    producer = AIOKafkaProducer(bootstrap_servers=messenger.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(EHR_EVENTS.name, upserted.to_bytes(), key=patient_key.encode())
        await wait_for(
            lambda: messenger.scalar(
                "SELECT count(*) FROM messenger.contacts WHERE patient_key = :pk", pk=patient_key
            ),
            timeout=15,
        )
        await producer.send_and_wait(COMMANDS.name, command.to_bytes(), key=patient_key.encode())
    finally:
        await producer.stop()
    [sms] = await messenger.outbound(patient_key, 1, timeout=15)
    assert sms["channel"] == "sms" and "Your skin check on " in sms["body"]
    assert "was cancelled. Would you like a new time" in sms["body"]
    assert sms["trace_id"]
    events = await messenger.events(
        MESSAGES.name,
        patient_key,
        lambda es: {"MessageSent", "MessageDelivered"} <= set(types_of(es)),
    )
    sent = next(e for e in events if e.type == "MessageSent")
    assert sent.causation_id == command.event_id
    assert sent.correlation_id == command.correlation_id
    assert sent.payload.message_id == step_message_id(command.payload.idempotency_key)
    assert sent.payload.template_key == "cancellation_recovery.1"


async def test_a_step_is_sent_once_however_often_it_is_commanded(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient()
    step = send_step()
    await messenger.handle("commands", envelope(step, patient_key))
    await messenger.handle("commands", envelope(step, patient_key), envelope(step, patient_key))
    await messenger.outbound(patient_key, 1)
    await messenger.handle("commands", envelope(step, patient_key))
    await wait_for(lambda: _no_queue(messenger, patient_key))
    assert len(await messenger.outbound(patient_key, 1)) == 1


async def _no_queue(messenger: Messenger, patient_key: str) -> bool:
    n = await messenger.scalar(
        "SELECT count(*) FROM messenger.outgoing WHERE patient_key = :pk AND status IN "
        "('queued', 'sending')",
        pk=patient_key,
    )
    return int(n) == 0


async def test_quiet_hours_block_with_the_time_to_retry_and_the_step_can_go_later(
    messenger: Messenger,
) -> None:
    patient_key, _ = await messenger.new_patient(zone=night_zone())
    step = send_step()
    await messenger.handle("commands", envelope(step, patient_key))
    events = await messenger.events(
        MESSAGES.name, patient_key, lambda es: "MessageBlocked" in types_of(es)
    )
    [blocked] = [e.payload for e in events]
    assert blocked.reason is BlockReason.quiet_hours
    assert blocked.retry_after is not None and blocked.retry_after > datetime.now(UTC)
    assert await messenger.sandbox(patient_key) == []


async def test_send_time_checks_block_with_their_reasons(messenger: Messenger) -> None:
    clinic = f"clinic-m{uuid.uuid4().hex[:8]}"
    deceased, _ = await messenger.new_patient(clinic, deceased=True)
    await messenger.handle("commands", envelope(send_step(), deceased))
    assert await blocked_reasons(messenger, deceased) == [BlockReason.deceased]

    marketing, _ = await messenger.new_patient(clinic)
    # A recorded denial blocks at once (with no record at all the step waits for one).
    denied = ConsentChanged(
        source=EhrSource(
            system=SourceSystem.json,
            record_id="consent-m",
            source_updated_at=datetime.now(UTC) - timedelta(days=1),
        ),
        purpose=Purpose.marketing,
        channel=None,
        status=ConsentStatus.revoked,
    )
    await messenger.handle("contacts", envelope(denied, marketing))
    cmd = send_step(workflow="cosmetic_maintenance", purpose=Purpose.marketing)
    await messenger.handle("commands", envelope(cmd, marketing))
    assert await blocked_reasons(messenger, marketing) == [BlockReason.no_consent]

    unknown_template, _ = await messenger.new_patient(clinic)
    await messenger.handle(
        "commands", envelope(send_step(workflow="no_such_workflow"), unknown_template)
    )
    assert await blocked_reasons(messenger, unknown_template) == [BlockReason.template_not_approved]

    capped, _ = await messenger.new_patient(clinic)
    await messenger.handle("commands", envelope(send_step(), capped))
    await messenger.handle("commands", envelope(send_step(workflow="follow_up"), capped))
    assert await blocked_reasons(messenger, capped) == [BlockReason.frequency_cap]

    expired, _ = await messenger.new_patient(clinic)
    await messenger.handle(
        "commands", envelope(send_step(expires_in=timedelta(seconds=-1)), expired)
    )
    assert await blocked_reasons(messenger, expired) == [BlockReason.expired]


async def test_an_open_escalation_holds_outreach_until_it_is_resolved(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient()
    case = EscalationRaised(
        escalation_id=f"esc-{uuid.uuid4().hex[:8]}",
        case_type=CaseType.clinical_question,
        severity=Severity.high,
        summary="Patient asked a clinical question",
    )
    await messenger.handle("escalations", envelope(case, patient_key))
    await messenger.handle("commands", envelope(send_step(), patient_key))
    assert await blocked_reasons(messenger, patient_key) == [BlockReason.escalation_open]
    resolved = EscalationResolved(
        escalation_id=case.escalation_id, outcome=Outcome.answered, resolved_by="nurse-1"
    )
    await messenger.handle("escalations", envelope(resolved, patient_key))
    await messenger.handle("commands", envelope(send_step(), patient_key))
    assert len(await messenger.outbound(patient_key, 1)) == 1


async def test_an_opted_out_channel_falls_back_to_email_with_a_subject(
    messenger: Messenger,
) -> None:
    patient_key, _ = await messenger.new_patient(email="ana@patients.example")
    await messenger.reply(patient_key, "STOP")
    await messenger.outbound(patient_key, 1)  # the one confirmation
    step = send_step(workflow="follow_up", fallback="email")
    await messenger.handle("commands", envelope(step, patient_key))
    messages = await messenger.outbound(patient_key, 2)
    email = messages[-1]
    assert email["channel"] == "email" and email["address"] == "ana@patients.example"
    assert email["subject"] == "About your skin check"
    assert "To stop these e-mails, reply STOP or UNSUBSCRIBE." in email["body"]
    events = await messenger.events(
        MESSAGES.name, patient_key, lambda es: "MessageSent" in types_of(es)
    )
    sent = next(e.payload for e in events if isinstance(e.payload, MessageSent))
    assert sent.is_fallback and sent.channel.value == "email"


async def test_a_spanish_speaker_gets_the_spanish_words(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient(language="es-US", given_name="José")
    await messenger.handle("commands", envelope(send_step(), patient_key))
    [sms] = await messenger.outbound(patient_key, 1)
    assert sms["body"].startswith("Hola José, le escribe")
    assert "revisión de piel" in sms["body"] and "Responda STOP" in sms["body"]


async def test_a_cancelled_sequence_sends_nothing_more(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient()
    step = send_step()
    cancel = CancelPendingSends(sequence_id=step.sequence_id, reason=StopReason.booked)
    await messenger.handle("commands", envelope(cancel, patient_key), envelope(step, patient_key))
    await messenger.handle("commands", envelope(send_step(step.sequence_id, 2), patient_key))
    assert not await wait_for(lambda: _has_sandbox(messenger, patient_key), timeout=1.0)


async def _has_sandbox(messenger: Messenger, patient_key: str) -> bool:
    return bool(await messenger.sandbox(patient_key))


async def test_an_old_ehr_consent_never_undoes_a_patients_stop(messenger: Messenger) -> None:
    patient_key, _ = await messenger.new_patient()
    await messenger.reply(patient_key, "STOP")
    stale = ConsentChanged(
        source=EhrSource(
            system=SourceSystem.json,
            record_id="consent-1",
            source_updated_at=datetime.now(UTC) - timedelta(days=30),
        ),
        purpose=Purpose.care,
        channel=None,
        status=ConsentStatus.granted,
    )
    await messenger.handle("contacts", envelope(stale, patient_key))
    assert await messenger.scalar(
        "SELECT opted_out_sms FROM messenger.contacts WHERE patient_key = :pk", pk=patient_key
    )
    ledger = await messenger.rows(
        "SELECT via, channel, change, applied FROM messenger.consent_ledger "
        "WHERE patient_key = :pk ORDER BY id",
        pk=patient_key,
    )
    assert [(r["via"], r["channel"], r["change"], r["applied"]) for r in ledger] == [
        ("reply_keyword", "sms", "opted_out", True),
        ("ehr", "sms", "opted_in", False),  # older than the STOP: recorded, not applied
        ("ehr", "email", "opted_in", True),
    ]
