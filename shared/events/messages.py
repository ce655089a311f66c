"""What happened to each message, and what patients answered.

Topics: ``outreach.messages.v1`` (sent, delivered, failed, blocked) and ``outreach.replies.v1``
(classified replies, opt-outs and opt-ins, booking and snooze requests). The messenger emits all
of them.

PHI: a reply travels as its message id and what it meant (intent, barrier, slot, date), NEVER as
its words; the body stays in the messenger's conversation store. Contacts are never carried.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from shared.events.common import Channel, Id, Instant, Key, Purpose, ServiceLine, Step
from shared.events.envelope import Payload, register

# --- outreach.messages.v1 ---------------------------------------------------------------------


class MessagePayload(Payload):
    """Facts every message event carries (not registered itself)."""

    message_id: Id
    sequence_id: Id
    step: Step
    channel: Channel


@register("MessageSent", version=1)
class MessageSent(MessagePayload):
    """Emitted when the provider accepted a step's message for delivery."""

    template_key: Key
    purpose: Purpose
    is_fallback: bool = False  # sent on the command's fallback channel


@register("MessageDelivered", version=1)
class MessageDelivered(MessagePayload):
    """Emitted when the provider reports the message reached the patient's handset or inbox."""


@register("BookingLinkClicked", version=1)
class BookingLinkClicked(Payload):
    """Emitted the first time a step's tracked booking link is opened (then redirected to the
    practice's booking page). A click is interest, never a booking: metrics shows it beside
    the funnel and never as its headline."""

    sequence_id: Id
    step: Step
    message_id: Id | None = None  # the step's message, when it was queued


class FailureReason(StrEnum):
    invalid_address = "invalid_address"  # number not in service, mailbox does not exist
    unreachable = "unreachable"  # handset off, mailbox full
    carrier_rejected = "carrier_rejected"  # filtered as spam, unregistered sender
    bounced = "bounced"
    provider_error = "provider_error"
    expired = "expired"  # the provider gave up trying
    unknown = "unknown"


@register("MessageFailed", version=1)
class MessageFailed(MessagePayload):
    """Emitted when the provider reports the message could not be delivered."""

    failure: FailureReason
    permanent: bool  # True: this contact will not work again; do not retry it
    fallback_channel: Channel | None = None  # the channel the messenger is trying next, if any


class BlockReason(StrEnum):
    """Why the messenger refused to send a step at send time."""

    opted_out = "opted_out"
    no_consent = "no_consent"  # marketing purpose without marketing consent
    quiet_hours = "quiet_hours"  # deferred: retry_after says when
    frequency_cap = "frequency_cap"  # deferred: retry_after says when
    no_contact = "no_contact"  # no usable contact on the command's channels
    template_not_approved = "template_not_approved"
    deceased = "deceased"
    patient_inactive = "patient_inactive"
    wrong_number = "wrong_number"  # the contact was reported as someone else's
    escalation_open = "escalation_open"  # a person is handling this patient
    expired = "expired"  # the command's expires_at passed before it could go
    missing_fact = "missing_fact"  # the words need a fact the command does not carry
    words_refused = "words_refused"  # the final text failed the linter


_DEFERRABLE = frozenset({BlockReason.quiet_hours, BlockReason.frequency_cap})


@register("MessageBlocked", version=1)
class MessageBlocked(Payload):
    """Emitted when a SendStep is not sent because a send-time check refused it."""

    sequence_id: Id
    step: Step
    channel: Channel | None  # None when no channel could be tried at all
    reason: BlockReason
    retry_after: Instant | None = None

    @model_validator(mode="after")
    def _retry_only_when_deferred(self) -> MessageBlocked:
        if self.retry_after is not None and self.reason not in _DEFERRABLE:
            raise ValueError("retry_after is only meaningful for quiet_hours or frequency_cap")
        return self


# --- outreach.replies.v1 ----------------------------------------------------------------------


class ReplyIntent(StrEnum):
    book = "book"
    choose_slot = "choose_slot"  # picked one of the offered slots
    later = "later"
    decline = "decline"
    no_longer_needed = "no_longer_needed"
    question = "question"  # non-clinical: cost, parking, what to bring
    clinical_concern = "clinical_concern"  # a clinical question or worry: a person answers
    red_flag = "red_flag"  # words that may mean an emergency: a person, now
    wrong_number = "wrong_number"
    help = "help"  # the HELP keyword
    unknown = "unknown"


class Barrier(StrEnum):
    """What stands between the patient and returning, when the reply says so."""

    timing = "timing"
    cost = "cost"
    uncertainty = "uncertainty"  # unsure it is needed or worth it
    unresolved_concern = "unresolved_concern"
    poor_experience = "poor_experience"


@register("ReplyReceived", version=1)
class ReplyReceived(Payload):
    """Emitted when a patient's reply has been classified. Opt-out keywords emit OptedOut."""

    reply_message_id: Id  # the messenger's reference to the stored reply; the body never travels
    channel: Channel
    sequence_id: Id | None = None  # None when the reply matched no open sequence
    in_reply_to_message_id: Id | None = None
    intent: ReplyIntent
    barrier: Barrier | None = None
    chosen_slot_id: Id | None = None  # the offered slot the patient picked
    snooze_until: date | None = None  # "later", with a date the patient gave
    confidence: Annotated[float, Field(ge=0.0, le=1.0)] | None = None

    @model_validator(mode="after")
    def _fields_match_intent(self) -> ReplyReceived:
        if (self.intent is ReplyIntent.choose_slot) != (self.chosen_slot_id is not None):
            raise ValueError("chosen_slot_id is required for, and only for, choose_slot")
        if self.snooze_until is not None and self.intent is not ReplyIntent.later:
            raise ValueError("snooze_until is only meaningful for the 'later' intent")
        return self


class ConsentScope(StrEnum):
    marketing = "marketing"  # marketing messages only; care recalls continue
    all = "all"  # every outreach message on the channel


class RecordedVia(StrEnum):
    reply_keyword = "reply_keyword"  # STOP / START and their equivalents
    reply_classified = "reply_classified"  # a free-text reply that clearly meant it
    staff = "staff"  # recorded by staff (phone call, front desk)
    provider = "provider"  # the SMS / e-mail provider reported it (carrier STOP, complaint)


class ConsentChangePayload(Payload):
    """Facts an opt-out or opt-in carries (not registered itself)."""

    channel: Channel | None  # None: every channel
    scope: ConsentScope
    recorded_via: RecordedVia
    source_message_id: Id | None = None  # the reply that said so

    @model_validator(mode="after")
    def _reply_needs_its_message(self) -> ConsentChangePayload:
        replied = self.recorded_via in (RecordedVia.reply_keyword, RecordedVia.reply_classified)
        if replied and self.source_message_id is None:
            raise ValueError("an opt change recorded from a reply needs source_message_id")
        return self


@register("OptedOut", version=1)
class OptedOut(ConsentChangePayload):
    """Emitted when a patient withdraws from outreach on a channel (or all channels)."""


@register("OptedIn", version=1)
class OptedIn(ConsentChangePayload):
    """Emitted when a patient (re)joins outreach on a channel (or all channels)."""


@register("BookingRequested", version=1)
class BookingRequested(Payload):
    """Emitted when a patient asks for a specific slot; the EHR confirms with AppointmentBooked."""

    booking_request_id: Id
    slot_id: Id
    slot_start: Instant
    service_line: ServiceLine
    provider_id: Id | None
    location_id: Id | None
    sequence_id: Id | None = None
    reply_message_id: Id | None = None


@register("SnoozeRequested", version=1)
class SnoozeRequested(Payload):
    """Emitted when a patient asks to be reminded later; the sequence waits until ``until``."""

    sequence_id: Id
    until: date
    reply_message_id: Id | None = None


# --- freed slots (outreach.messages.v1) ---------------------------------------------------------


class OfferSource(StrEnum):
    waitlist = "waitlist"  # the patient asked for an earlier time
    segment = "segment"  # the patient is in a segment for the slot's service line


class _FreedSlot(Payload):
    """The freed time itself, carried whole by every freed-slot event, so a reader of one of
    them never waits for another topic (or another event) to know what the slot was."""

    offer_id: Id  # one per freed appointment, shared by every batch of its offers
    slot_id: Id
    start: Instant
    service_line: ServiceLine
    provider_id: Id | None
    location_id: Id | None
    freed_at: Instant  # when the cancellation was recorded
    price_cents: Annotated[int, Field(ge=0)] | None = None  # the practice's price, when set
    currency: Annotated[str, Field(min_length=3, max_length=3)] | None = None


@register("SlotFreed", version=1)
class SlotFreed(_FreedSlot):
    """Emitted when a cancelled appointment's slot is confirmed free in the EHR and is offered
    to others. ``patient_key``: the patient who cancelled."""

    appointment_id: Id


@register("SlotOffered", version=1)
class SlotOffered(_FreedSlot):
    """Emitted for each patient a freed slot is offered to (``patient_key``)."""

    batch: Annotated[int, Field(ge=1, le=100)]
    source: OfferSource
    channel: Channel


@register("SlotRefilled", version=1)
class SlotRefilled(_FreedSlot):
    """Emitted when a patient offered a freed slot booked it (``patient_key``)."""

    booking_request_id: Id
    refilled_at: Instant


MESSAGE_PAYLOADS: tuple[type[Payload], ...] = (
    MessageSent,
    MessageDelivered,
    MessageFailed,
    MessageBlocked,
    BookingLinkClicked,
    SlotFreed,
    SlotOffered,
    SlotRefilled,
)
REPLY_PAYLOADS: tuple[type[Payload], ...] = (
    ReplyReceived,
    OptedOut,
    OptedIn,
    BookingRequested,
    SnoozeRequested,
)
