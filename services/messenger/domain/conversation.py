"""What to do about a patient's reply: events, consent changes, our answer, follow-up work.

``decide`` is pure: the shell stores the reply first, then applies the decision in the same
transaction (events staged in the outbox, the consent ledger written, answers queued for the
dispatcher, slot searches and bookings scheduled as durable timers).

Events carry references (the reply's message id), never the reply's words.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from services.messenger.domain.checks import ContactCard
from services.messenger.domain.classifier import RedFlag, Understanding
from services.messenger.domain.keywords import Keyword
from services.messenger.domain.system_messages import ALWAYS_ALLOWED, Reply
from services.messenger.domain.templates import MONTHS
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

ESCALATION_NAMESPACE = uuid.UUID("5c7e0c1e-9b7a-4f7e-a1d2-2f4b8c1d9e60")

RED_FLAG_SUMMARIES: dict[RedFlag, str] = {
    RedFlag.bleeding: "Patient reports bleeding",
    RedFlag.changing_mole: "Patient reports a new or changing mole",
    RedFlag.severe_pain: "Patient reports severe pain",
    RedFlag.swelling_or_fever: "Patient reports swelling, fever or signs of infection",
    RedFlag.allergic_reaction: "Patient reports a possible allergic reaction",
    RedFlag.emergency: "Patient says it is an emergency",
}


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


def escalation_id(reply_message_id: str, case: CaseType) -> str:
    """Deterministic, so a replayed reply raises the same case, not a second one."""
    return str(uuid.uuid5(ESCALATION_NAMESPACE, f"{reply_message_id}:{case.value}"))


def format_day(day: date, language: str) -> str:
    month = MONTHS.get(language, MONTHS["en"]).split()[day.month - 1]
    return f"{day.day} de {month}" if language == "es" else f"{month} {day.day}"


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
    opted_out = card.opted_out(channel) if card is not None else False
    language = card.lang if card is not None else "en"
    events: list[Payload] = []
    answers: list[Answer] = []
    consent: ConsentChange | None = None

    def received(intent: ReplyIntent, **extra: object) -> ReplyReceived:
        return ReplyReceived(
            reply_message_id=reply_message_id,
            channel=channel,
            sequence_id=state.sequence_id,
            in_reply_to_message_id=state.last_outbound_message_id,
            intent=intent,
            barrier=understood.barrier,
            confidence=understood.confidence,
            **extra,
        )

    def escalate(case: CaseType, severity: Severity, summary: str) -> EscalationRaised:
        return EscalationRaised(
            escalation_id=escalation_id(reply_message_id, case),
            case_type=case,
            severity=severity,
            summary=summary,
            source_message_id=reply_message_id,
            sequence_id=state.sequence_id,
            service_line=state.service_line,
            channel=channel,
        )

    def opt_out(scope_channel: Channel | None, via: RecordedVia) -> None:
        nonlocal consent
        everywhere = card is None or (card.opted_out_sms and card.opted_out_email)
        already = opted_out if scope_channel is not None else everywhere
        if already:
            return  # one confirmation only: a second STOP changes nothing and gets no answer
        consent = ConsentChange(scope_channel, True, via)
        events.append(
            OptedOut(
                channel=scope_channel,
                scope=ConsentScope.all,
                recorded_via=via,
                source_message_id=reply_message_id,
            )
        )
        answers.append(Answer(Reply.stop_confirmation))

    # 1. red flags: a person, now; a safety answer that points to the practice and emergency care
    if understood.intent is ReplyIntent.red_flag:
        flag = understood.red_flags[0] if understood.red_flags else RedFlag.emergency
        events.append(escalate(CaseType.red_flag, Severity.urgent, RED_FLAG_SUMMARIES[flag]))
        events.append(received(ReplyIntent.red_flag))
        answers.append(Answer(Reply.safety))
        if understood.revocation:
            opt_out(channel, RecordedVia.reply_classified)
        return _done(events, consent, answers, opted_out)

    # 2. carrier keywords
    if understood.keyword in (Keyword.opt_out, Keyword.opt_out_all):
        scope = None if understood.keyword is Keyword.opt_out_all else channel
        opt_out(scope, RecordedVia.reply_keyword)
        return _done(events, consent, answers, opted_out)
    if understood.keyword is Keyword.opt_in:
        if opted_out:
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
            return Decision(tuple(events), consent, tuple(answers))
        return Decision()
    if understood.keyword is Keyword.help:
        events.append(received(ReplyIntent.help))
        answers.append(Answer(Reply.help))
        return _done(events, consent, answers, opted_out)

    # 3. free-text revocation is an opt-out too
    if understood.revocation:
        opt_out(channel, RecordedVia.reply_classified)
        return _done(events, consent, answers, opted_out)

    intent = understood.intent
    task: tuple[Task, dict[str, str]] | None = None
    clear_offer = False
    wrong_number = False
    if understood.barrier is Barrier.poor_experience:
        events.append(
            escalate(
                CaseType.poor_experience,
                Severity.normal,
                "Patient describes a poor experience",
            )
        )

    if intent is ReplyIntent.wrong_number:
        events.append(received(intent))
        wrong_number = channel is Channel.sms
        answers.append(Answer(Reply.wrong_number_ack))
    elif intent is ReplyIntent.no_longer_needed:
        events.append(received(intent))
        answers.append(Answer(Reply.no_longer_needed_ack))
    elif intent is ReplyIntent.choose_slot:
        offer = state.live_offer(now)
        slot = understood.slot
        if offer and slot is not None and slot <= len(offer):
            chosen = offer[slot - 1]
            events.append(received(intent, chosen_slot_id=chosen.slot_id))
            task = (
                Task.book_slot,
                {
                    "slot_id": chosen.slot_id,
                    "start": chosen.start.isoformat(),
                    "provider_id": chosen.provider_id or state.provider_id or "",
                    "location_id": chosen.location_id or state.location_id or "",
                    "reply": reply_message_id,
                },
            )
            clear_offer = True
        else:  # the offer ran out: look again
            events.append(received(ReplyIntent.book))
            task = (Task.offer_slots, {"reply": reply_message_id})
    elif intent is ReplyIntent.clinical_concern:
        events.append(received(intent))
        if understood.barrier is Barrier.unresolved_concern:
            case, summary = CaseType.unresolved_concern, "Patient reports a concern is unresolved"
        else:
            case, summary = CaseType.clinical_question, "Patient asked a clinical question"
        events.append(escalate(case, Severity.high, summary))
        answers.append(Answer(Reply.clinical_ack))
    elif intent is ReplyIntent.later:
        local_today = now.astimezone(zone).date()
        until = understood.snooze_until or local_today + timedelta(days=snooze_default_days)
        events.append(received(intent, snooze_until=understood.snooze_until))
        if state.sequence_id is not None:
            events.append(
                SnoozeRequested(
                    sequence_id=state.sequence_id, until=until, reply_message_id=reply_message_id
                )
            )
        answers.append(Answer(Reply.snooze_ack, {"snooze_date": format_day(until, language)}))
    elif intent is ReplyIntent.decline:
        events.append(received(intent))
        answers.append(Answer(Reply.decline_ack))
    elif intent is ReplyIntent.book:
        events.append(received(intent))
        task = (Task.offer_slots, {"reply": reply_message_id})
    elif intent is ReplyIntent.question:
        events.append(received(intent))
        events.append(
            escalate(
                CaseType.unclassified_reply,
                Severity.low,
                "Patient asked a non-clinical question",
            )
        )
        answers.append(Answer(Reply.question_ack))
    else:
        events.append(received(ReplyIntent.unknown))
        if needs_reader(text):
            events.append(unclassified_case(reply_message_id, state, channel))
    return _done(events, consent, answers, opted_out, task, clear_offer, wrong_number)


def needs_reader(text: str) -> bool:
    """An unclassified reply long enough (or asking something) to need a person to read it."""
    return "?" in text or len(text.split()) >= 4


def unclassified_case(
    reply_message_id: str, state: ConversationState, channel: Channel
) -> EscalationRaised:
    return EscalationRaised(
        escalation_id=escalation_id(reply_message_id, CaseType.unclassified_reply),
        case_type=CaseType.unclassified_reply,
        severity=Severity.low,
        summary="Patient reply needs a person to read it",
        source_message_id=reply_message_id,
        sequence_id=state.sequence_id,
        service_line=state.service_line,
        channel=channel,
    )


def _done(
    events: list[Payload],
    consent: ConsentChange | None,
    answers: list[Answer],
    opted_out: bool,
    task: tuple[Task, dict[str, str]] | None = None,
    clear_offer: bool = False,
    wrong_number: bool = False,
) -> Decision:
    # A patient who opted out hears only the confirmation, safety answers and HELP.
    if opted_out or (consent is not None and consent.opted_out):
        answers = [a for a in answers if a.reply in ALWAYS_ALLOWED]
        task = None
    return Decision(tuple(events), consent, tuple(answers), task, clear_offer, wrong_number)
