"""A patient's reply, from any channel (Twilio webhook, e-mail gateway, sandbox), in one
transaction: stored, understood, and acted on (events staged, consent ledger written, answers
queued, slot searches scheduled). The webhook answers 2xx only after this commits.

A reply is stored once per (provider, provider message id), so a provider that retries its
webhook gets the first answer again and nothing happens twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import conversations, freed_booking, queue, repository
from services.messenger.context import MessengerContext
from services.messenger.domain.classifier import classify
from services.messenger.domain.conversation import Answer, ConversationState, Decision, decide
from services.messenger.domain.summary import ReplySummary, summarise
from services.messenger.domain.system_messages import Reply, text_of
from services.messenger.domain.templates import service_name
from services.messenger.domain.understanding import Understanding
from services.messenger.ehr import chart
from services.messenger.providers import sandbox
from shared.events import new_event
from shared.events.common import Channel, Purpose
from shared.events.escalations import EscalationRaised
from shared.runtime import Runtime

INBOUND_NAMESPACE = uuid.UUID("9a4d8f0e-6b51-4c3a-8e27-31f5d0c2b7aa")
TASK_KINDS = ("offer_slots", "book_slot")
SECOND_READING = "second_reading"


@dataclass(frozen=True)
class InboundMessage:
    channel: Channel
    provider: str  # twilio | email | sandbox
    provider_message_id: str
    from_address: str
    body: str
    to_address: str | None = None
    clinic_id: str | None = None  # when the caller knows (sandbox, an e-mail routed by address)
    patient_key: str | None = None


@dataclass(frozen=True)
class InboundResult:
    message_id: str
    patient_key: str | None
    label: str | None
    duplicate: bool = False


def inbound_message_id(provider: str, provider_message_id: str) -> str:
    return str(uuid.uuid5(INBOUND_NAMESPACE, f"{provider}:{provider_message_id}"))


def reply_message_id(inbound_id: str, answer: Answer) -> str:
    return str(uuid.uuid5(INBOUND_NAMESPACE, f"answer:{inbound_id}:{answer.reply.value}"))


async def receive(
    runtime: Runtime, ctx: MessengerContext, session: AsyncSession, msg: InboundMessage
) -> InboundResult:
    message_id = inbound_message_id(msg.provider, msg.provider_message_id)
    now = runtime.clock.now()
    found = await conversations.reply_context(
        session,
        channel=msg.channel.value,
        address=msg.from_address,
        to=msg.to_address,
        clinic_id=msg.clinic_id,
        patient_key=msg.patient_key,
    )
    patient_key = found.card.patient_key if found else None
    clinic_id = patient_key.split(":", 1)[0] if patient_key else msg.clinic_id
    row = {
        "message_id": message_id,
        "clinic_id": clinic_id,
        "patient_key": patient_key,
        "channel": msg.channel.value,
        "provider": msg.provider,
        "provider_message_id": msg.provider_message_id,
        "from_address": msg.from_address,
        "to_address": msg.to_address,
        "body": msg.body,
        "received_at": now,
    }
    if found is None or patient_key is None or clinic_id is None:
        # Nobody we know: kept for staff to look at, nothing else happens.
        stored = await conversations.store_inbound(
            session,
            **row,
            intent=None,
            barrier=None,
            red_flags=None,
            sequence_id=None,
            in_reply_to=None,
            reading=None,
        )
        return InboundResult(message_id, None, None) if stored else await _seen(session, msg)

    card, state, practice = found.card, found.state, found.practice
    zone = ZoneInfo(
        card.time_zone or practice.time_zone or runtime.settings.revisit_default_time_zone
    )
    opted_out = card.opted_out(msg.channel)
    today = now.astimezone(zone).date()
    own = ctx.phrases.reading(msg.body, clinic_id) if ctx.phrases is not None else None
    understood = classify(
        msg.body,
        offered_slots=len(state.live_offer(now)),
        opted_out=opted_out,
        today=today,
        extra=[own] if own is not None else (),
    )
    decision = decide(
        state,
        card,
        understood,
        text=msg.body,
        reply_message_id=message_id,
        channel=msg.channel,
        now=now,
        zone=zone,
        snooze_default_days=ctx.settings.snooze_default_days,
    )
    # Stored first: a provider's retry of the same reply stops here, before any effect.
    summary = summarise(msg.body, understood, today=today)
    if not await conversations.store_inbound(
        session,
        **row,
        intent=understood.label,
        barrier=understood.barrier.value if understood.barrier else None,
        red_flags=sorted(f.value for f in understood.red_flags) or None,
        sequence_id=state.sequence_id,
        in_reply_to=state.last_outbound_message_id,
        reading=reading_record(understood, summary),
    ):
        return await _seen(session, msg)
    await chart.note_received(session, message_id, clinic_id, patient_key)  # if switched on
    if msg.provider == "sandbox":
        await sandbox.store_inbound(
            session,
            message_id=message_id,
            clinic_id=clinic_id,
            patient_key=patient_key,
            channel=msg.channel,
            address=msg.from_address,
            body=msg.body,
            received_at=now,
        )
    await carry_out(runtime, ctx, session, Replied(msg, message_id, found, now), decision)
    if ctx.reader is not None:
        await runtime.timers.schedule(
            session,
            SECOND_READING,
            message_id,
            now,
            patient_key=patient_key,
            payload={"offered": str(len(state.live_offer(now))), "opted_out": str(opted_out)},
        )
    return InboundResult(message_id, patient_key, understood.label)


@dataclass(frozen=True)
class Replied:
    """A stored reply and what it was read against."""

    msg: InboundMessage
    message_id: str
    found: conversations.ReplyContext
    now: datetime

    @property
    def patient_key(self) -> str:
        return self.found.card.patient_key

    @property
    def clinic_id(self) -> str:
        return self.patient_key.split(":", 1)[0]


async def carry_out(
    runtime: Runtime, ctx: MessengerContext, session: AsyncSession, r: Replied, decision: Decision
) -> None:
    """Every effect of a decision about a stored reply, in the reply's transaction: the consent
    ledger, the sequence ended, the number marked, cases opened and events staged, the offer
    cleared, follow-up work scheduled, answers queued on the channel the reply came from."""
    clinic_id, patient_key, now = r.clinic_id, r.patient_key, r.now
    card, state, practice = r.found.card, r.found.state, r.found.practice
    if decision.consent is not None:
        await repository.record_consent(
            session,
            clinic_id=clinic_id,
            patient_key=patient_key,
            channel=decision.consent.channel,
            purpose=Purpose.care,
            granted=not decision.consent.opted_out,
            via=decision.consent.via.value,
            actor="patient",
            at=now,
            source_message_id=r.message_id,
            ensure_contact=False,
        )
    if decision.end_sequence is not None:
        # The messenger holds the revocation itself: nothing more of this sequence goes out, on
        # any channel, whatever the sequencer's own stop is doing.
        await repository.end_sequence(session, decision.end_sequence, "opted_out")
    if decision.wrong_number:
        await repository.mark_wrong_number(session, patient_key)
    for event in decision.events:
        if isinstance(event, EscalationRaised):
            await repository.open_escalation(session, event.escalation_id, patient_key)
    if decision.events:
        await runtime.outbox.stage(
            session,
            [
                new_event(e, clinic_id=clinic_id, patient_key=patient_key, occurred_at=now)
                for e in decision.events
            ],
        )
    if decision.clear_offer:
        await conversations.save_offer(session, clinic_id, patient_key, (), None)
    answers = decision.answers
    language = card.lang
    if decision.task is not None:
        kind, payload = decision.task
        offer_id = payload.get("offer_id")
        if offer_id and not await freed_booking.claim(
            session, offer_id, patient_key, r.message_id, now
        ):
            # Another patient said yes first: this one hears at once that the time has gone.
            when = await freed_booking.gone_time(runtime, session, offer_id, patient_key)
            answers += (Answer(Reply.freed_slot_gone, {"slot_time": when}),)
        else:
            await runtime.timers.schedule(
                session, kind.value, r.message_id, now, patient_key=patient_key, payload=payload
            )
    values = {
        "practice_name": practice.name,
        "practice_phone": practice.phone,
        "booking_link": practice.booking_url,
        "emergency_number": ctx.settings.emergency_number,
        "service_name": service_name(state.service_line, language),
    }
    await queue_answers(
        ctx,
        session,
        state,
        clinic_id,
        patient_key,
        r.msg,
        r.message_id,
        answers,
        values,
        language,
        now,
    )


def reading_record(u: Understanding, summary: ReplySummary) -> dict[str, Any]:
    """What the reply was read as, stored beside it for the person who reads it."""
    return {
        "consent": u.consent,
        "safety": u.safety.label,
        "confidence": u.confidence,
        "needs_person": u.needs_person,
        "summary": summary.line(),
        "reading": {
            "suggested_intent": u.suggested_intent.value,
            "sure": u.sure,
            "red_flags": sorted(f.value for f in u.red_flags),
            "barrier": u.barrier.value if u.barrier else None,
            "slot": u.slot,
            "snooze_until": u.snooze_until.isoformat() if u.snooze_until else None,
            "layers": sorted({r.source for r in u.readings}),
            "summary": summary.as_dict(),
        },
    }


async def _seen(session: AsyncSession, msg: InboundMessage) -> InboundResult:
    earlier = await conversations.find_inbound(session, msg.provider, msg.provider_message_id)
    assert earlier is not None
    return InboundResult(
        inbound_message_id(msg.provider, msg.provider_message_id),
        earlier["patient_key"],
        earlier["intent"],
        duplicate=True,
    )


async def queue_answers(
    ctx: MessengerContext,
    session: AsyncSession,
    state: ConversationState,
    clinic_id: str,
    patient_key: str,
    msg: InboundMessage,
    in_reply_to: str,
    answers: tuple[Answer, ...],
    values: dict[str, str | None],
    language: str,
    now: datetime,
    *,
    key_suffix: str = "",
) -> None:
    """Answers go back on the channel (and through the provider) the reply came from.

    Each answer's id is derived from the reply it answers (and ``key_suffix``, e.g. the offer),
    so a reply handled twice can never be answered twice."""
    provider = (
        ctx.providers["sandbox"] if msg.provider == "sandbox" else ctx.provider_for(msg.channel)
    )
    messages = []
    for answer in answers:
        mid = reply_message_id(in_reply_to + key_suffix, answer)
        body = text_of(answer.reply, language, {**values, **answer.values})
        messages.append(
            queue.QueuedMessage(
                message_id=mid,
                idempotency_key=mid,
                clinic_id=clinic_id,
                patient_key=patient_key,
                kind="reply",
                channel=msg.channel.value,
                provider=provider.name,
                sender=provider.sender,
                address=msg.from_address,
                body=body,
                subject="Re: your message" if msg.channel is Channel.email else None,
                created_at=now,
                reply_kind=answer.reply.value,
                in_reply_to=in_reply_to,
                sequence_id=state.sequence_id,
            )
        )
    await queue.enqueue(session, messages)
