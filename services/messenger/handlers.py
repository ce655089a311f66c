"""Messenger shell: keep contacts current; turn SendStep into a message or a MessageBlocked."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import domain, repository
from services.messenger.providers.base import MessageProvider, OutgoingMessage
from shared.consumer import BatchHandler, Delivery
from shared.events import Payload
from shared.events.ehr import ConsentChanged, PatientUpserted
from shared.events.messages import BlockReason, MessageBlocked, MessageSent
from shared.events.outreach import CancelPendingSends, SendStep
from shared.runtime import Runtime
from shared.telemetry import current_trace_id

MESSAGE_ID_NAMESPACE = uuid.UUID("0b8f3c52-1a5e-4d0f-8f1e-6c2d7b9a4e31")


def contacts_handler(runtime: Runtime) -> BatchHandler:
    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            p = d.envelope.payload
            if isinstance(p, PatientUpserted):
                await repository.upsert_contact(
                    session, d.envelope.clinic_id, d.envelope.patient_key, p
                )
            elif isinstance(p, ConsentChanged):
                await repository.apply_consent(session, d.envelope.patient_key, p)

    return handle


def commands_handler(runtime: Runtime, provider: MessageProvider) -> BatchHandler:
    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            p = d.envelope.payload
            if isinstance(p, CancelPendingSends):
                await session.execute(
                    text(
                        f"INSERT INTO {repository.SCHEMA}.cancelled_sequences (sequence_id, "
                        "reason) VALUES (:s, :r) ON CONFLICT DO NOTHING"
                    ),
                    {"s": p.sequence_id, "r": p.reason.value},
                )
            elif isinstance(p, SendStep):
                with d.activate():
                    outcome = await _send_step(runtime, provider, session, d, p)
                if outcome is not None:
                    await runtime.outbox.stage(
                        session,
                        [d.envelope.caused(outcome, occurred_at=runtime.clock.now())],
                        headers=d.trace_headers,
                    )

    return handle


async def _send_step(
    runtime: Runtime,
    provider: MessageProvider,
    session: AsyncSession,
    d: Delivery,
    cmd: SendStep,
) -> Payload | None:
    cancelled = (
        await session.execute(
            text(f"SELECT 1 FROM {repository.SCHEMA}.cancelled_sequences WHERE sequence_id = :s"),
            {"s": cmd.sequence_id},
        )
    ).first()
    if cancelled:
        return None  # the sequence stopped after this step was commanded: nothing goes out
    now = runtime.clock.now()
    card = await repository.contact_card(session, d.envelope.patient_key)
    blocked = domain.check_send(card, cmd, now, runtime.settings.revisit_default_time_zone)
    if blocked is not None or card is None:
        reason = blocked.reason if blocked else BlockReason.no_contact
        return MessageBlocked(
            sequence_id=cmd.sequence_id,
            step=cmd.step,
            channel=cmd.channel,
            reason=reason,
            retry_after=blocked.retry_after if blocked else None,
        )
    message_id = str(uuid.uuid5(MESSAGE_ID_NAMESPACE, cmd.idempotency_key))
    if not await repository.claim_send(session, cmd.sequence_id, cmd.step, message_id, now):
        return None  # this step was sent before: never twice
    practice = await repository.practice(session, d.envelope.clinic_id)
    address = card.address(cmd.channel)
    assert address is not None  # check_send refused a missing address
    receipt = await provider.send(
        OutgoingMessage(
            message_id=message_id,
            idempotency_key=cmd.idempotency_key,
            clinic_id=d.envelope.clinic_id,
            patient_key=d.envelope.patient_key,
            channel=cmd.channel,
            to=address,
            body=domain.render(cmd, card, practice),
            trace_id=current_trace_id(),
        )
    )
    await repository.record_outcome(session, cmd.sequence_id, cmd.step, "sent", receipt.provider)
    return MessageSent(
        message_id=receipt.provider_message_id,
        sequence_id=cmd.sequence_id,
        step=cmd.step,
        channel=cmd.channel,
        template_key=cmd.template_key,
        purpose=cmd.purpose,
    )
