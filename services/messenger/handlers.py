"""Messenger consumers: keep contacts and consent current; turn commands into queued messages;
follow escalations (outreach waits while a person handles the patient)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import held, held_store, queue, repository, sending
from services.messenger.context import MessengerContext
from services.messenger.ehr import store as ehr_store
from shared.consumer import BatchHandler, Delivery
from shared.events.ehr import ConsentChanged, PatientUpserted
from shared.events.escalations import EscalationRaised, EscalationResolved
from shared.events.outreach import CancelPendingSends, SendStep
from shared.runtime import Runtime


def contacts_handler(runtime: Runtime) -> BatchHandler:
    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        # Cards in one statement; consent after (it creates a card if none, and an upsert
        # only ever moves a card forward, so the two commute).
        await repository.upsert_contacts(
            session,
            [
                (d.envelope.clinic_id, d.envelope.patient_key, d.envelope.payload)
                for d in deliveries
                if isinstance(d.envelope.payload, PatientUpserted)
            ],
        )
        await repository.keep_erased_opt_outs(
            session,
            [
                d.envelope.patient_key
                for d in deliveries
                if isinstance(d.envelope.payload, PatientUpserted)
            ],
        )
        for d in deliveries:
            p = d.envelope.payload
            if isinstance(p, PatientUpserted):
                # The record numbers that find the patient in the EHR when booking.
                await ehr_store.save_identifiers(
                    session, d.envelope.clinic_id, d.envelope.patient_key, p
                )
            elif isinstance(p, ConsentChanged):
                await repository.apply_consent(
                    session, d.envelope.clinic_id, d.envelope.patient_key, p
                )
        # Steps that arrived before these patients' cards or consent look again now.
        await held.wake(runtime, session, (d.envelope.patient_key for d in deliveries))

    return handle


def commands_handler(runtime: Runtime, ctx: MessengerContext) -> BatchHandler:
    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        steps: list[Delivery] = []
        for d in deliveries:
            p = d.envelope.payload
            if isinstance(p, CancelPendingSends):
                # Commands of one patient arrive in order: steps before the cancel go first.
                if steps:
                    await sending.plan_sends(runtime, ctx, session, steps)
                    steps = []
                await session.execute(
                    text(
                        f"INSERT INTO {repository.SCHEMA}.cancelled_sequences (sequence_id, "
                        "reason) VALUES (:s, :r) ON CONFLICT DO NOTHING"
                    ),
                    {"s": p.sequence_id, "r": p.reason.value},
                )
                await queue.cancel_sequence(session, p.sequence_id)
                await held_store.drop_sequence(session, p.sequence_id)
            elif isinstance(p, SendStep):
                steps.append(d)
        if steps:
            await sending.plan_sends(runtime, ctx, session, steps)

    return handle


def escalations_handler(runtime: Runtime) -> BatchHandler:
    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            p = d.envelope.payload
            if isinstance(p, EscalationRaised):
                await repository.open_escalation(session, p.escalation_id, d.envelope.patient_key)
            elif isinstance(p, EscalationResolved):
                await repository.close_escalation(session, p.escalation_id)

    return handle
