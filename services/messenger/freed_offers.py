"""The offers of a freed slot, in small batches: who is next (``domain.freed_slots.rank`` with
the clinic's outreach policy), the offer queued on their channel and kept as their open offer
(one slot, the shared offer id), ``SlotOffered`` for each; the next batch after a wait while
the slot is still on offer, and the offers closed once its time is too near."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import (
    freed_booking,
    freed_store,
    queue,
    repository,
    template_store,
    waitlist_store,
)
from services.messenger import practices as practices_store
from services.messenger.context import MessengerContext
from services.messenger.domain import freed_slot_words as words
from services.messenger.domain.booking import slot_time
from services.messenger.domain.checks import WEEK, SendWindow
from services.messenger.domain.conversation import OfferedSlot
from services.messenger.domain.freed_slots import (
    Candidate,
    FreedSlot,
    Source,
    rank,
)
from services.messenger.domain.linter import lint_final
from services.messenger.domain.templates import (
    MissingFact,
    Rendered,
    Template,
    render,
    select_template,
    service_name,
)
from shared.events import new_event
from shared.events.common import ClinicalUrgency, ServiceLine
from shared.events.messages import OfferSource, SlotOffered
from shared.runtime import Runtime
from shared.timers import Timer, TimerHandler

NEXT = freed_booking.NEXT
OFFER_NAMESPACE = uuid.UUID("0c7e5d3a-91b4-4f2e-8a6d-5e2b7c1f9d04")
log = logging.getLogger(__name__)


def offer_message_id(offer_id: str, patient_key: str) -> str:
    return str(uuid.uuid5(OFFER_NAMESPACE, f"offer:{offer_id}:{patient_key}"))


def freed_slot_of(row: dict[str, Any]) -> FreedSlot:
    return FreedSlot(
        offer_id=row["offer_id"],
        clinic_id=row["clinic_id"],
        slot_id=row["slot_id"] or "",
        start=row["start"],
        service_line=ServiceLine(row["service_line"]),
        provider_id=row["provider_id"],
        location_id=row["location_id"],
        freed_by=row["freed_by"],
    )


def next_batch_handler(runtime: Runtime, ctx: MessengerContext) -> TimerHandler:
    async def handle(session: AsyncSession, timers: Sequence[Timer]) -> None:
        for timer in timers:
            await offer_batch(runtime, ctx, session, timer.key)

    return handle


async def offer_batch(
    runtime: Runtime, ctx: MessengerContext, session: AsyncSession, offer_id: str
) -> int:
    """Offer the slot to the next few patients; returns how many were offered."""
    now = runtime.clock.now()
    settings = ctx.settings
    row = await freed_store.freed(session, offer_id, lock=True)
    if row is None or row["status"] not in ("offering", "claimed"):
        return 0
    if row["start"] <= now + timedelta(minutes=settings.freed_slot_lead_minutes):
        await freed_booking.withdraw(runtime, ctx, session, row, "closed", winner=None, tell=False)
        return 0
    wait = timedelta(minutes=settings.freed_slot_batch_minutes)
    await runtime.timers.schedule(session, NEXT, offer_id, now + wait)
    if row["status"] == "claimed":
        return 0  # someone said yes and is being booked: wait for that answer
    slot = freed_slot_of(row)
    clinic_id = slot.clinic_id
    found = await waitlist_store.candidates(
        session, clinic_id, slot.service_line.value, slot.provider_id
    )
    keys = [c["patient_key"] for c in found]
    cards = await repository.contact_cards(session, keys)
    recent = await queue.recent_outreach(session, keys, now - WEEK)
    escalated = await repository.with_open_escalations(session, keys)
    earlier = await freed_store.offers(session, offer_id)
    holding = await freed_store.holding_offers(session, keys, now)
    policy = await waitlist_store.policy(session, clinic_id)
    candidates = [
        Candidate(
            c["patient_key"],
            Source(c["source"]),
            cards.get(c["patient_key"]),
            since=c["since"],
            due_on=c["due_on"],
            marketing=bool(c["marketing"]),
            recent_sends=tuple(recent.get(c["patient_key"], ())),
            escalation_open=c["patient_key"] in escalated,
            offer_open=c["patient_key"] in holding,
        )
        for c in found
    ]
    picks, _skipped = rank(
        slot,
        candidates,
        policy=policy,
        now=now,
        batch_size=settings.freed_slot_batch_size,
        already_offered=frozenset(o["patient_key"] for o in earlier),
    )
    if not picks:
        return 0
    batch = int(row["batches"]) + 1
    practice = await practices_store.practice(session, clinic_id)
    names = await practices_store.provider_names(session, [(clinic_id, slot.provider_id)])
    expires = min(
        now + timedelta(hours=settings.offer_valid_hours),
        slot.start - timedelta(minutes=settings.freed_slot_lead_minutes),
    )
    offered = OfferedSlot(slot.slot_id, slot.start, slot.provider_id, slot.location_id)
    approved = await template_store.approved_for(session, [clinic_id], [words.WORKFLOW])
    messages, rows, events = [], [], []
    for pick in picks:
        card = cards[pick.patient_key]
        zone = ZoneInfo(
            card.time_zone or practice.time_zone or runtime.settings.revisit_default_time_zone
        )
        template = select_template(
            approved.get((clinic_id, words.WORKFLOW, words.STEP, pick.channel.value))
            or approved.get((None, words.WORKFLOW, words.STEP, pick.channel.value), []),
            language=card.lang,
            tone=words.TONE,
            urgency=ClinicalUrgency.routine,
        )
        values: dict[str, str | None] = {
            "practice_name": practice.name,
            "practice_phone": practice.phone,
            "provider_name": names.get((clinic_id, slot.provider_id or "")),
            "service_name": service_name(slot.service_line, card.lang),
            "slot_time": slot_time(slot.start, zone, template.language if template else card.lang),
        }
        rendered = _words(ctx, template, values, practice.name)
        if template is None or rendered is None:
            continue  # no approved words, or a fact they state unknown: not offered
        provider = ctx.provider_for(pick.channel)
        message_id = offer_message_id(offer_id, pick.patient_key)
        messages.append(
            queue.QueuedMessage(
                message_id=message_id,
                idempotency_key=message_id,
                clinic_id=clinic_id,
                patient_key=pick.patient_key,
                kind="offer",
                channel=pick.channel.value,
                provider=provider.name,
                sender=provider.sender,
                address=card.address(pick.channel) or "",
                body=rendered.body,
                subject=rendered.subject,
                created_at=now,
                template_key=f"{words.WORKFLOW}.{words.STEP}",
                template_id=template.template_id,
                purpose=pick.purpose.value,
                expires_at=expires,
                send_window=SendWindow(policy, None, card.home_state).to_json(),
            )
        )
        await freed_store.offer_in_conversation(
            session, clinic_id, pick.patient_key, offered, expires, offer_id, slot.service_line
        )
        rows.append(
            {
                "offer_id": offer_id,
                "patient_key": pick.patient_key,
                "batch": batch,
                "source": pick.source.value,
                "channel": pick.channel.value,
                "message_id": message_id,
                "offered_at": now,
            }
        )
        offer = SlotOffered(
            **freed_booking.slot_facts(row),
            batch=batch,
            source=OfferSource(pick.source.value),
            channel=pick.channel,
        )
        events.append(
            new_event(offer, clinic_id=clinic_id, patient_key=pick.patient_key, occurred_at=now)
        )
    if not messages:
        return 0
    await queue.enqueue(session, messages)
    await freed_store.record_offers(session, rows)
    await freed_store.update_freed(session, offer_id, now, batches=batch)
    await runtime.outbox.stage(session, events)
    return len(messages)


def _words(
    ctx: MessengerContext,
    template: Template | None,
    values: dict[str, str | None],
    practice_name: str | None,
) -> Rendered | None:
    """The approved words with the facts filled in and linted again, or None: a missing fact
    or a rule broken by the final text means no offer, never words with a stand-in."""
    if template is None:
        return None
    try:
        rendered = render(template, values)
    except MissingFact as exc:
        log.warning(
            "freed slot words refused", extra={"reason": "missing_fact", "detail": exc.variable}
        )
        return None
    issues = lint_final(
        template,
        rendered,
        sms_max_chars=ctx.settings.sms_max_chars,
        first_contact_max_chars=ctx.settings.sms_first_max_chars,
        names=(practice_name, values.get("provider_name")),
    )
    if issues:
        log.warning(
            "freed slot words refused", extra={"reason": "words_refused", "detail": issues[0].rule}
        )
        return None
    return rendered
