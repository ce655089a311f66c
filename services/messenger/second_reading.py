"""The outside model's second reading of a reply, as a durable timer after the reply's own
transaction (so a slow or absent endpoint never holds a webhook or the patient's card).

The local layers have already acted on the reply. The outside reading is merged with theirs
and only what it adds is acted on now, through the same effects as the first decision: a red
flag or clinical content they missed (a case, the safety or clinical answer), a revocation they
missed (opt-out, the sequence ended, the one confirmation). Its intent is stored beside the
reply as a suggestion for the person who reads it. A failed call changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import conversations, inbound
from services.messenger.context import MessengerContext
from services.messenger.domain.classifier import classify
from services.messenger.domain.conversation import decide
from services.messenger.domain.second_reading import added
from shared.events.common import Channel
from shared.events.messages import ReplyReceived
from shared.runtime import Runtime
from shared.timers import Timer, TimerHandler


class SecondReading:
    def __init__(self, runtime: Runtime, ctx: MessengerContext) -> None:
        self.runtime = runtime
        self.ctx = ctx

    def handlers(self) -> dict[str, TimerHandler]:
        return {inbound.SECOND_READING: self.read}

    async def read(self, session: AsyncSession, timers: Sequence[Timer]) -> None:
        for timer in timers:
            await self._one(session, timer)

    async def _one(self, session: AsyncSession, timer: Timer) -> None:
        reader = self.ctx.reader
        row = await conversations.stored_reply(session, timer.key)
        if reader is None or row is None or row["patient_key"] is None:
            return
        offered = int(timer.payload.get("offered", "0"))
        opted_out = timer.payload.get("opted_out") == "True"
        found_reading = await reader.read(row["body"], offered_slots=offered, opted_out=opted_out)
        if found_reading is None:
            await conversations.note_second_reading(session, timer.key, {"answered": False})
            return
        reading, suggestion = found_reading
        found = await conversations.reply_context(
            session,
            channel=row["channel"],
            address=row["from_address"],
            to=row["to_address"],
            clinic_id=None,
            patient_key=row["patient_key"],
        )
        if found is None:
            return
        first = classify(row["body"], offered_slots=offered, opted_out=opted_out)
        extra = added(first, reading)
        note = {
            "answered": True,
            "suggested_intent": suggestion.value if suggestion else None,
            "safety": reading.safety.label,
            "revoke": reading.revoke,
            "added": extra is not None,
        }
        raised = None if extra is None else ("red_flag" if extra.red_flags else None)
        await conversations.note_second_reading(
            session,
            timer.key,
            note,
            label=raised or ("opt_out" if extra is not None and extra.revocation else None),
            safety=extra.safety.label if extra is not None and extra.safety.value else None,
        )
        if extra is None:
            return
        now = self.runtime.clock.now()
        card, practice = found.card, found.practice
        zone = ZoneInfo(
            card.time_zone or practice.time_zone or self.runtime.settings.revisit_default_time_zone
        )
        channel = Channel(row["channel"])
        decision = decide(
            found.state, card, extra, text=row["body"], reply_message_id=timer.key,
            channel=channel, now=now, zone=zone,
        )  # fmt: skip
        # The first decision already reported the reply; this one only adds what it missed.
        decision = replace(
            decision, events=tuple(e for e in decision.events if not isinstance(e, ReplyReceived))
        )
        msg = inbound.InboundMessage(
            channel=channel,
            provider=row["provider"],
            provider_message_id=row["provider_message_id"],
            from_address=row["from_address"],
            body=row["body"],
            to_address=row["to_address"],
        )
        await inbound.carry_out(
            self.runtime, self.ctx, session, inbound.Replied(msg, timer.key, found, now), decision
        )
