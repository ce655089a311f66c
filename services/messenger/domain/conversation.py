"""What to do about a patient's reply: events, consent changes, our answers, follow-up work.

``decide`` is pure: the shell stores the reply first, then applies the decision in the same
transaction (events staged in the outbox, the consent ledger written, the sequence ended,
answers queued for the dispatcher, slot searches and bookings scheduled as durable timers).

A reply can carry several things, and every one is acted on, in the safety order:

1. safety: a red flag pages now (urgent case, safety answer); clinical content goes to a person;
2. consent: a revocation opts out the channel it came on (and any channel it names), ends the
   sequence it answers on every channel, and is confirmed exactly once on that channel; an
   opt-in and HELP as the carrier rules say;
3. the intent, only when the reading is sure: booking, a slot, later, decline...; when it is
   not sure, a person reads the reply (a case) and nothing automatic happens.

Later steps only add: nothing here can drop a red flag's case or a revocation. Events carry
references (the reply's message id), never the reply's words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import partial
from zoneinfo import ZoneInfo

from services.messenger.domain.cases import (
    CASE_SUMMARIES,
    QUESTION_SUMMARY,
    case,
    escalation_id,
    red_flag_summary,
)
from services.messenger.domain.checks import ContactCard
from services.messenger.domain.red_flags import Safety
from services.messenger.domain.system_messages import ALWAYS_ALLOWED, Reply
from services.messenger.domain.templates import MONTHS
from services.messenger.domain.understanding import Understanding
from shared.events import Payload
from shared.events.common import Channel, ServiceLine
from shared.events.escalations import CaseType, EscalationRaised, Severity
from shared.events.messages import (
    Barrier,
    ConsentScope,
    OptedIn,
    OptedOut,
    RecordedVia,
    ReplyIntent,
    ReplyReceived,
    SnoozeRequested,
)

__all__ = [
    "Answer",
    "ConsentChange",
    "ConversationState",
    "Decision",
    "OfferedSlot",
    "Task",
    "decide",
    "escalation_id",
]


class Task(StrEnum):
    offer_slots = "offer_slots"
    book_slot = "book_slot"


@dataclass(frozen=True)
class OfferedSlot:
    slot_id: str
    start: datetime
    provider_id: str | None = None
    location_id: str | None = None


@dataclass(frozen=True)
class ConversationState:
    """What the messenger remembers about a patient's conversation."""

    patient_key: str
    sequence_id: str | None = None  # the sequence of the last outreach message
    last_outbound_message_id: str | None = None
    service_line: ServiceLine = ServiceLine.unspecified
    provider_id: str | None = None
    location_id: str | None = None
    offer: tuple[OfferedSlot, ...] = ()
    offer_expires_at: datetime | None = None
    # Set when the open offer is a freed slot offered to several patients (first "yes" wins).
    offer_id: str | None = None

    def live_offer(self, now: datetime) -> tuple[OfferedSlot, ...]:
        if self.offer and self.offer_expires_at is not None and now < self.offer_expires_at:
            return self.offer
        return ()


@dataclass(frozen=True)
class ConsentChange:
    channel: Channel | None  # None: every channel
    opted_out: bool
    via: RecordedVia


@dataclass(frozen=True)
class Answer:
    reply: Reply
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    events: tuple[Payload, ...] = ()
    consent: ConsentChange | None = None
    answers: tuple[Answer, ...] = ()
    task: tuple[Task, dict[str, str]] | None = None
    clear_offer: bool = False
    wrong_number: bool = False
    end_sequence: str | None = None  # a revocation ends this sequence on every channel

    @property
    def cases(self) -> tuple[EscalationRaised, ...]:
        return tuple(e for e in self.events if isinstance(e, EscalationRaised))


def format_day(day: date, language: str) -> str:
    month = MONTHS.get(language, MONTHS["en"]).split()[day.month - 1]
    return f"{day.day} de {month}" if language == "es" else f"{month} {day.day}"


_ASKING = frozenset(
    {ReplyIntent.book, ReplyIntent.choose_slot, ReplyIntent.later, ReplyIntent.question}
)


def _also_asks(u: Understanding, text: str) -> bool:
    """Whether a revoking reply also asks for something besides stopping (then, and only
    then, the confirmation may say how to get that answered; a red flag has its own answer)."""
    return u.suggested_intent in _ASKING or "?" in text


def decide(
    state: ConversationState,
    card: ContactCard | None,
    understood: Understanding,
    *,
    text: str,
    reply_message_id: str,
    channel: Channel,
    now: datetime,
    zone: ZoneInfo,
    snooze_default_days: int = 30,
) -> Decision:
    """The events, consent change, answers and follow-up work a classified reply calls for."""
    u = understood
    opted_out = card.opted_out(channel) if card is not None else False
    language = card.lang if card is not None else "en"
    events: list[Payload] = []
    answers: list[Answer] = []
    consent: ConsentChange | None = None
    end_sequence: str | None = None
    escalate = partial(
        case,
        reply_message_id=reply_message_id,
        sequence_id=state.sequence_id,
        service_line=state.service_line,
        channel=channel,
    )

    # 1. safety: a person now for a red flag; a person soon for clinical content.
    if u.safety is Safety.red_flag:
        events.append(escalate(CaseType.red_flag, Severity.urgent, red_flag_summary(u.red_flags)))
        answers.append(Answer(Reply.safety))
    elif u.safety is Safety.clinical:
        kind = (
            CaseType.unresolved_concern
            if u.barrier is Barrier.unresolved_concern
            else CaseType.clinical_question
        )
        events.append(escalate(kind, Severity.high, CASE_SUMMARIES[kind]))
        answers.append(Answer(Reply.clinical_ack))

    # 2. consent
    if u.revocation:
        end_sequence = state.sequence_id
        scope = _revoked_channels(u, channel)
        everywhere = card is None or (card.opted_out_sms and card.opted_out_email)
        already = everywhere if scope is None else all(card is None or card.opted_out(c)
                                                       for c in scope)  # fmt: skip
        if not already:  # one confirmation only: a second STOP changes nothing, no answer
            via = RecordedVia.reply_keyword if u.keyword else RecordedVia.reply_classified
            target = None if scope is None or len(scope) > 1 else next(iter(scope))
            consent = ConsentChange(target, True, via)
            events.append(
                OptedOut(
                    channel=target,
                    scope=ConsentScope.all,
                    recorded_via=via,
                    source_message_id=reply_message_id,
                )
            )
            confirmation = (
                Reply.stop_confirmation_asked if _also_asks(u, text) else Reply.stop_confirmation
            )
            answers.insert(0, Answer(confirmation))
    elif u.opt_in and opted_out:
        consent = ConsentChange(channel, False, RecordedVia.reply_keyword)
        events.append(
            OptedIn(
                channel=channel,
                scope=ConsentScope.all,
                recorded_via=RecordedVia.reply_keyword,
                source_message_id=reply_message_id,
            )
        )
        answers.append(Answer(Reply.start_confirmation))
    if u.help and not u.revocation:
        answers.append(Answer(Reply.help))

    # 3. what the patient asked for, when the reading is sure of it
    intent = u.primary
    task: tuple[Task, dict[str, str]] | None = None
    clear_offer = wrong_number = False
    chosen_slot_id: str | None = None
    snooze_until: date | None = None
    people = any(isinstance(e, EscalationRaised) for e in events)
    if u.barrier is Barrier.poor_experience:
        summary = CASE_SUMMARIES[CaseType.poor_experience]
        events.append(escalate(CaseType.poor_experience, Severity.normal, summary))
    act = u.intent
    if act is ReplyIntent.wrong_number:
        wrong_number = channel is Channel.sms
        answers.append(Answer(Reply.wrong_number_ack))
    elif act is ReplyIntent.no_longer_needed:
        answers.append(Answer(Reply.no_longer_needed_ack))
    elif act is ReplyIntent.choose_slot or _takes_freed_slot(state, act, now):
        offer = state.live_offer(now)
        slot = u.slot if act is ReplyIntent.choose_slot else 1
        if offer and slot is not None and slot <= len(offer):
            chosen = offer[slot - 1]
            chosen_slot_id = chosen.slot_id
            task = (
                Task.book_slot,
                {
                    "slot_id": chosen.slot_id,
                    "start": chosen.start.isoformat(),
                    "provider_id": chosen.provider_id or state.provider_id or "",
                    "location_id": chosen.location_id or state.location_id or "",
                    "reply": reply_message_id,
                    **({"offer_id": state.offer_id} if state.offer_id else {}),
                },
            )
            clear_offer = True
        else:  # the offer ran out, or no single slot was named: look again
            intent = ReplyIntent.book if intent is ReplyIntent.choose_slot else intent
            task = (Task.offer_slots, {"reply": reply_message_id})
    elif act is ReplyIntent.later:
        local_today = now.astimezone(zone).date()
        until = u.snooze_until or local_today + timedelta(days=snooze_default_days)
        snooze_until = u.snooze_until
        if state.sequence_id is not None:
            events.append(
                SnoozeRequested(
                    sequence_id=state.sequence_id, until=until, reply_message_id=reply_message_id
                )
            )
        answers.append(Answer(Reply.snooze_ack, {"snooze_date": format_day(until, language)}))
    elif act is ReplyIntent.decline:
        answers.append(Answer(Reply.decline_ack))
    elif act is ReplyIntent.book:
        task = (Task.offer_slots, {"reply": reply_message_id})
    elif act is ReplyIntent.question and not people:
        events.append(escalate(CaseType.unclassified_reply, Severity.low, QUESTION_SUMMARY))
        answers.append(Answer(Reply.question_ack))
    elif not people and not u.revocation and u.needs_person:
        # Not sure what the patient meant: a person reads it; nothing automatic happens.
        summary = CASE_SUMMARIES[CaseType.unclassified_reply]
        events.append(escalate(CaseType.unclassified_reply, Severity.low, summary))
    elif not people and not u.revocation and not u.keyword and "?" in text:
        summary = CASE_SUMMARIES[CaseType.unclassified_reply]
        events.append(escalate(CaseType.unclassified_reply, Severity.low, summary))

    if not (u.revocation and intent is ReplyIntent.unknown) and not (u.opt_in and opted_out):
        events.append(
            ReplyReceived(
                reply_message_id=reply_message_id,
                channel=channel,
                sequence_id=state.sequence_id,
                in_reply_to_message_id=state.last_outbound_message_id,
                intent=intent,
                barrier=u.barrier,
                confidence=u.confidence,
                chosen_slot_id=chosen_slot_id if intent is ReplyIntent.choose_slot else None,
                snooze_until=snooze_until if intent is ReplyIntent.later else None,
            )
        )
    # A patient who is out after this reply hears only the confirmation, safety and HELP.
    back_in = consent is not None and not consent.opted_out
    if (opted_out and not back_in) or (consent is not None and consent.opted_out) or u.revocation:
        answers = [a for a in answers if a.reply in ALWAYS_ALLOWED]
        task = None
    return Decision(
        tuple(events),
        consent,
        tuple(answers),
        task,
        clear_offer and task is not None,
        wrong_number,
        end_sequence,
    )


def _takes_freed_slot(state: ConversationState, act: ReplyIntent | None, now: datetime) -> bool:
    """A "yes" to a freed slot offered alone takes it (one time, one answer to give)."""
    return (
        act is ReplyIntent.book and state.offer_id is not None and len(state.live_offer(now)) == 1
    )


def _revoked_channels(u: Understanding, channel: Channel) -> frozenset[Channel] | None:
    """The channels a revocation covers (None: every channel): the one it came on, and any
    other it names ("stop texting and e-mailing me"); STOPALL and "all messages": every one."""
    if u.reading.every_channel:
        return None
    return frozenset({channel}) | u.reading.channels
