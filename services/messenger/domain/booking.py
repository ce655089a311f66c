"""The scheduling conversation's words and events: slot offers in the patient's language and
time zone, the BookingRequested a choice becomes, the staff callback when booking by text fails.

An offer says whose times they are: the patient's own provider's first ("Dr. Okafor has these
times"); when that provider has none soon, it says so and names the provider whose times are
offered instead. It names a provider only when the practice gave their display name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from services.messenger.domain.conversation import (
    Answer,
    ConversationState,
    OfferedSlot,
    escalation_id,
)
from services.messenger.domain.system_messages import Reply
from shared.events.common import Channel
from shared.events.escalations import CaseType, EscalationRaised, Severity
from shared.events.messages import BookingRequested

_DAYS = {"en": "Mon Tue Wed Thu Fri Sat Sun", "es": "lun mar mié jue vie sáb dom"}
_MONTHS_SHORT = {
    "en": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
    "es": "ene feb mar abr may jun jul ago sep oct nov dic",
}


def slot_time(start: datetime, zone: ZoneInfo, language: str) -> str:
    local = start.astimezone(zone)
    day = _DAYS.get(language, _DAYS["en"]).split()[local.weekday()]
    month = _MONTHS_SHORT.get(language, _MONTHS_SHORT["en"]).split()[local.month - 1]
    if language == "es":
        return f"{day} {local.day} {month}, {local:%H:%M}"
    hour = local.hour % 12 or 12
    return f"{day} {month} {local.day}, {hour}:{local:%M} {'AM' if local.hour < 12 else 'PM'}"


def slot_list(slots: tuple[OfferedSlot, ...], zone: ZoneInfo, language: str) -> str:
    return "; ".join(
        f"{i}) {slot_time(s.start, zone, language)}" for i, s in enumerate(slots, start=1)
    )


@dataclass(frozen=True)
class Offer:
    """Times found for an offer, and whose: the patient's own provider (``same``), another
    provider, or any provider of the practice (``provider_id`` None)."""

    slots: tuple[OfferedSlot, ...]
    provider_id: str | None
    same: bool


def offer_answer(
    offer: Offer,
    own_provider: str | None,
    names: dict[str, str],
    zone: ZoneInfo,
    language: str,
) -> Answer:
    """The words of an offer: whose times these are, and the times."""
    values = {"slot_list": slot_list(offer.slots, zone, language)}
    own = names.get(own_provider or "")
    if own is None:
        return Answer(Reply.slot_offer, values)
    if offer.same:
        return Answer(Reply.slot_offer_same_provider, values)
    other = names.get(offer.provider_id or "")
    if other is None:
        return Answer(Reply.slot_offer_any_provider, values)
    return Answer(Reply.slot_offer_other_provider, {**values, "other_provider_name": other})


def booking_requested(
    state: ConversationState,
    slot: OfferedSlot,
    *,
    booking_request_id: str,
    reply_message_id: str | None,
) -> BookingRequested:
    return BookingRequested(
        booking_request_id=booking_request_id,
        slot_id=slot.slot_id,
        slot_start=slot.start,
        service_line=state.service_line,
        provider_id=slot.provider_id or state.provider_id,
        location_id=slot.location_id or state.location_id,
        sequence_id=state.sequence_id,
        reply_message_id=reply_message_id,
    )


def booking_failed_case(
    state: ConversationState, reply_message_id: str, channel: Channel
) -> EscalationRaised:
    return EscalationRaised(
        escalation_id=escalation_id(reply_message_id, CaseType.booking_failed),
        case_type=CaseType.booking_failed,
        severity=Severity.normal,
        summary="Patient asked to book by text; please call to find a time",
        source_message_id=reply_message_id,
        sequence_id=state.sequence_id,
        service_line=state.service_line,
        channel=channel,
    )
