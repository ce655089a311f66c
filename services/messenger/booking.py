"""The scheduling conversation's follow-up work, run as durable timers.

``offer_slots``: search the EHR for up to three open slots with the patient's provider and
service, store the offer and text it, saying whose times they are ("Dr. Okafor has these
times ... Reply 1, 2 or 3"); when that provider has none, the soonest of the practice's other
named providers, said as such; with none at all (or the EHR unreachable after retries) fall
back to the booking link, or to a staff callback (an escalation).
``book_slot``: ask the EHR for the chosen slot (idempotent per booking request), emit
BookingRequested and confirm it; a slot taken meanwhile is apologised for and new times offered.

Each is a ``TimerWork`` (``booking_timers``): the poller claims the timer (a lease,
committed), ``prepare`` reads what the EHR call needs, ``call`` asks the EHR with no
transaction open (a slow EHR holds no lock and no connection), and ``record`` applies the
answer to the conversation as it is then (re-read under its lock). Both calls are idempotent (a
search reads; a booking is a conditional create keyed by the booking request), so a crash
between call and record, which calls again after the lease, repeats them harmlessly.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import conversations, freed_booking, inbound, repository
from services.messenger import practices as practices_store
from services.messenger.context import MessengerContext
from services.messenger.domain.booking import (
    Offer,
    booking_failed_case,
    booking_requested,
    offer_answer,
    slot_time,
)
from services.messenger.domain.conversation import Answer, ConversationState, OfferedSlot
from services.messenger.domain.system_messages import Reply
from services.messenger.domain.templates import service_name
from services.messenger.ehr.handoff import hand_to_staff
from services.messenger.scheduling.base import (
    Booked,
    BookingResult,
    SchedulingAdapter,
    Slot,
    SlotQuery,
)
from shared.events import Payload, new_event
from shared.events.common import Channel
from shared.runtime import Runtime
from shared.timers import Timer

BOOKING_NAMESPACE = uuid.UUID("2f6c9b1d-7e3a-4a59-b0c4-8d1e5f7a9c32")
MAX_TRIES = 3
RETRY_IN = timedelta(seconds=30)


def booking_request_id(reply_message_id: str, slot_id: str) -> str:
    return str(uuid.uuid5(BOOKING_NAMESPACE, f"{reply_message_id}:{slot_id}"))


def _offered(slots: Sequence[Slot]) -> tuple[OfferedSlot, ...]:
    return tuple(OfferedSlot(s.slot_id, s.start, s.provider_id, s.location_id) for s in slots)


async def find_offer(
    scheduling: SchedulingAdapter, query: SlotQuery, others: Sequence[str] = ()
) -> Offer:
    """Times with the patient's provider; when that provider has none (or does not offer this
    service), the soonest times of one of ``others`` (the practice's other named providers), so
    the offer can say whose they are; else any provider's. Any of these beats a callback."""
    if query.provider_id is not None:
        own = await scheduling.find_slots(query)
        if own:
            return Offer(_offered(own), query.provider_id, same=True)
    best: tuple[datetime, str, list[Slot]] | None = None
    for provider_id in others:
        if provider_id == query.provider_id:
            continue
        found = await scheduling.find_slots(replace(query, provider_id=provider_id))
        if found and (best is None or (found[0].start, provider_id) < best[:2]):
            best = (found[0].start, provider_id, found)
    if best is not None:
        return Offer(_offered(best[2]), best[1], same=False)
    anyone = await scheduling.find_slots(replace(query, provider_id=None))
    return Offer(_offered(anyone), None, same=False)


class BookingWork:
    def __init__(self, runtime: Runtime, ctx: MessengerContext) -> None:
        self.runtime = runtime
        self.ctx = ctx

    async def _context(
        self, session: AsyncSession, timer: Timer, *, lock: bool = True
    ) -> tuple[
        str, ConversationState, inbound.InboundMessage, str, ZoneInfo, dict[str, str | None]
    ]:
        patient_key = timer.patient_key or ""
        clinic_id = patient_key.split(":", 1)[0]
        state = await conversations.load_state(session, patient_key, lock=lock)
        card = await repository.contact_card(session, patient_key)
        practice = await practices_store.practice(session, clinic_id)
        row = await _reply(session, str(timer.payload.get("reply") or timer.key))
        channel = Channel(str(row["channel"])) if row else Channel.sms
        address = str(row["from_address"]) if row else (card.address(channel) if card else "") or ""
        provider = str(row["provider"]) if row else "sandbox"
        message = inbound.InboundMessage(channel, provider, timer.key, address, "")
        language = card.lang if card else "en"
        zone = ZoneInfo(
            (card.time_zone if card else None)
            or practice.time_zone
            or self.runtime.settings.revisit_default_time_zone
        )
        names = await practices_store.provider_names(session, [(clinic_id, state.provider_id)])
        values: dict[str, str | None] = {
            "practice_name": practice.name,
            "practice_phone": practice.phone,
            "booking_link": practice.booking_url,
            "service_name": service_name(state.service_line, language),
            "provider_name": names.get((clinic_id, state.provider_id or "")),
        }
        return clinic_id, state, message, language, zone, values

    async def _answer(
        self,
        session: AsyncSession,
        clinic_id: str,
        state: ConversationState,
        message: inbound.InboundMessage,
        reply_to: str,
        answers: list[Answer],
        values: dict[str, str | None],
        language: str,
        key_suffix: str = "",
    ) -> None:
        if not message.from_address:
            return
        await inbound.queue_answers(
            self.ctx,
            session,
            state,
            clinic_id,
            state.patient_key,
            message,
            reply_to,
            tuple(answers),
            values,
            language,
            self.runtime.clock.now(),
            key_suffix=key_suffix,
        )

    async def _stage(
        self, session: AsyncSession, clinic_id: str, patient_key: str, events: list[Payload]
    ) -> None:
        now = self.runtime.clock.now()
        await self.runtime.outbox.stage(
            session,
            [
                new_event(e, clinic_id=clinic_id, patient_key=patient_key, occurred_at=now)
                for e in events
            ],
        )

    async def _retry_or_give_up(self, session: AsyncSession, timer: Timer) -> bool:
        tries = int(timer.payload.get("tries", 0)) + 1
        if tries >= MAX_TRIES:
            return False
        await self.runtime.timers.schedule(
            session,
            timer.kind,
            timer.key,
            self.runtime.clock.now() + RETRY_IN,
            patient_key=timer.patient_key,
            payload={**timer.payload, "tries": tries},
        )
        return True

    def slot_query(self, state: ConversationState, clinic_id: str) -> SlotQuery:
        return SlotQuery(
            clinic_id,
            state.service_line,
            state.provider_id,
            state.location_id,
            after=self.runtime.clock.now() + timedelta(hours=2),
        )

    async def record_offer(self, session: AsyncSession, timer: Timer, found: Offer | None) -> None:
        """``found`` None: the EHR could not be asked (retried a few times, then a fallback)."""
        clinic_id, state, message, language, zone, values = await self._context(session, timer)
        reply_to = str(timer.payload.get("reply") or timer.key)
        if found is None:
            if await self._retry_or_give_up(session, timer):
                return
            found = Offer((), None, same=False)
        if found.slots:
            named = await practices_store.providers_of(session, clinic_id)
            now = self.runtime.clock.now()
            expires = now + timedelta(hours=self.ctx.settings.offer_valid_hours)
            await conversations.save_offer(
                session, clinic_id, state.patient_key, found.slots, expires
            )
            answer = offer_answer(found, state.provider_id, named, zone, language)
            # A new offer is a new answer: key it by the offer, not only by the reply.
            await self._answer(
                session,
                clinic_id,
                state,
                message,
                reply_to,
                [answer],
                values,
                language,
                key_suffix=f":{found.slots[0].slot_id}",
            )
            return
        await self._fallback(session, clinic_id, state, message, reply_to, values, language)

    async def _fallback(
        self,
        session: AsyncSession,
        clinic_id: str,
        state: ConversationState,
        message: inbound.InboundMessage,
        reply_to: str,
        values: dict[str, str | None],
        language: str,
    ) -> None:
        if values.get("booking_link"):
            answer = Answer(Reply.booking_link)
        else:
            answer = Answer(Reply.callback)
            case = booking_failed_case(state, reply_to, message.channel)
            await repository.open_escalation(session, case.escalation_id, state.patient_key)
            await self._stage(session, clinic_id, state.patient_key, [case])
        await self._answer(session, clinic_id, state, message, reply_to, [answer], values, language)

    async def record_booking(
        self, session: AsyncSession, timer: Timer, slot: Slot, result: BookingResult | None
    ) -> None:
        """``result`` None: the EHR could not be asked (retried a few times, then a fallback)."""
        clinic_id, state, message, language, zone, values = await self._context(session, timer)
        reply_to = str(timer.payload.get("reply") or timer.key)
        request_id = booking_request_id(reply_to, slot.slot_id)
        offer_id = opt(timer.payload.get("offer_id"))
        if result is None:
            if await self._retry_or_give_up(session, timer):
                return
            await self._freed(session, clinic_id, state, slot, offer_id, "failed", request_id)
            await self._fallback(session, clinic_id, state, message, reply_to, values, language)
            return
        outcome = {Booked.booked: "booked", Booked.needs_person: "booked"}.get(
            result.outcome, "taken" if result.outcome is Booked.taken else "failed"
        )
        await self._freed(session, clinic_id, state, slot, offer_id, outcome, request_id)
        if result.outcome in (Booked.booked, Booked.needs_person):
            offered = OfferedSlot(slot.slot_id, slot.start, slot.provider_id, slot.location_id)
            event = booking_requested(
                state, offered, booking_request_id=request_id, reply_message_id=reply_to
            )
            events: list[Payload] = [event]
            answer = Answer(Reply.booking_requested)
            if result.outcome is Booked.needs_person:  # a person books it, and says so
                cases, answer = await hand_to_staff(
                    session,
                    clinic_id,
                    state,
                    reply_to,
                    message.channel,
                    request_id,
                    result,
                    self.runtime.clock.now(),
                )
                events += cases
            await self._stage(session, clinic_id, state.patient_key, events)
            answer = Answer(answer.reply, {"slot_time": slot_time(slot.start, zone, language)})
            await self._answer(
                session, clinic_id, state, message, reply_to, [answer], values, language
            )
        elif result.outcome is Booked.taken:
            await self._answer(
                session,
                clinic_id,
                state,
                message,
                reply_to,
                [Answer(Reply.slot_taken)],
                values,
                language,
            )
            await self.runtime.timers.schedule(
                session,
                "offer_slots",
                f"{timer.key}:again",
                self.runtime.clock.now(),
                patient_key=timer.patient_key,
                payload={"reply": reply_to},
            )
        else:
            await self._fallback(session, clinic_id, state, message, reply_to, values, language)

    async def _freed(
        self,
        session: AsyncSession,
        clinic_id: str,
        state: ConversationState,
        slot: Slot,
        offer_id: str | None,
        outcome: str,
        request_id: str,
    ) -> None:
        """A freed slot taken (refilled, or gone for the others) or open again."""
        await freed_booking.after_booking(
            self.runtime,
            self.ctx,
            session,
            clinic_id=clinic_id,
            patient_key=state.patient_key,
            slot=slot,
            offer_id=offer_id,
            outcome=outcome,
            booking_request_id=request_id,
        )


def opt(value: object) -> str | None:
    return str(value) if value else None


async def _reply(session: AsyncSession, message_id: str) -> dict[str, object] | None:
    row = (
        await session.execute(
            text(
                f"SELECT channel, from_address, provider FROM {repository.SCHEMA}.inbound "
                "WHERE message_id = :m"
            ),
            {"m": message_id},
        )
    ).first()
    return dict(row._mapping) if row else None
