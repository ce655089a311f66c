"""The outside model's second reading of a reply, as a durable timer after the reply's own
transaction (so a slow or absent endpoint never holds a webhook or the patient's card).

The local layers have already acted on the reply. The outside reading is merged with theirs
and only what it adds is acted on now, through the same effects as the first decision: a red
flag or clinical content they missed (a case, the safety or clinical answer), a revocation they
missed (opt-out, the sequence ended, the one confirmation). Its intent is stored beside the
reply as a suggestion for the person who reads it. A failed call changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
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
from shared.timers import Timer, TimerAction


@dataclass(frozen=True)
class _Asked:
    """What the outside reader is asked: the stored reply and its context."""

    row: dict[str, Any]
    offered: int
    opted_out: bool


class SecondReading:
    """A ``TimerWork``: ``prepare`` reads the stored reply, ``call`` asks the outside reader
    with no transaction open (a slow endpoint holds no lock and no connection), ``record`` acts
    on what the reading adds. A crash between call and record asks again: reading is harmless."""

    def __init__(self, runtime: Runtime, ctx: MessengerContext) -> None:
        self.runtime = runtime
        self.ctx = ctx

    def handlers(self) -> dict[str, TimerAction]:
        return {inbound.SECOND_READING: self}

    async def prepare(self, session: AsyncSession, timer: Timer) -> _Asked | None:
        if self.ctx.reader is None:
            return None
        row = await conversations.stored_reply(session, timer.key)
        if row is None or row["patient_key"] is None:
            return None
        offered = int(timer.payload.get("offered", "0"))
        return _Asked(dict(row), offered, timer.payload.get("opted_out") == "True")

    async def call(self, timer: Timer, prepared: _Asked | None) -> Any:
        if prepared is None or self.ctx.reader is None:
            return None
        return await self.ctx.reader.read(
            prepared.row["body"], offered_slots=prepared.offered, opted_out=prepared.opted_out
        )

    async def record(
        self, session: AsyncSession, timer: Timer, prepared: _Asked | None, result: Any
    ) -> None:
        if prepared is None:
            return
        row, offered, opted_out = prepared.row, prepared.offered, prepared.opted_out
        if result is None:
            await conversations.note_second_reading(session, timer.key, {"answered": False})
            return
        found_reading = result
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
