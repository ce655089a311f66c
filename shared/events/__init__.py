"""Every event Revisit exchanges: the envelope, the typed payloads and the topic each travels on.

Importing ``shared.events`` registers every payload, so ``parse_event`` can read any of them.
"""

from __future__ import annotations

from shared.events import ehr, eligibility, escalations, messages, outreach
from shared.events.envelope import (
    Envelope,
    EventError,
    Payload,
    UnknownEventType,
    UnknownEventVersion,
    new_event,
    parse_event,
    register,
    registered_types,
    upcaster,
)
from shared.topics import (
    COMMANDS,
    EHR_EVENTS,
    ELIGIBILITY,
    ESCALATIONS,
    MESSAGES,
    REPLIES,
    SEQUENCES,
    Topic,
)

_BY_TOPIC: tuple[tuple[Topic, tuple[type[Payload], ...]], ...] = (
    (EHR_EVENTS, ehr.PAYLOADS),
    (ELIGIBILITY, eligibility.PAYLOADS),
    (SEQUENCES, outreach.SEQUENCE_PAYLOADS),
    (COMMANDS, outreach.COMMAND_PAYLOADS),
    (MESSAGES, messages.MESSAGE_PAYLOADS),
    (REPLIES, messages.REPLY_PAYLOADS),
    (ESCALATIONS, escalations.PAYLOADS),
)

TOPIC_OF: dict[str, Topic] = {
    cls.event_type: topic for topic, classes in _BY_TOPIC for cls in classes
}
"""Event type -> the one topic it is published on."""
if len(TOPIC_OF) != sum(len(classes) for _, classes in _BY_TOPIC):
    raise RuntimeError("an event type is listed under more than one topic")


def topic_for(event_type: str) -> Topic:
    """The topic an event type is published on; UnknownEventType when it has none."""
    try:
        return TOPIC_OF[event_type]
    except KeyError:
        raise UnknownEventType(f"event type {event_type!r} has no topic") from None


__all__ = [
    "TOPIC_OF",
    "Envelope",
    "EventError",
    "Payload",
    "UnknownEventType",
    "UnknownEventVersion",
    "new_event",
    "parse_event",
    "register",
    "registered_types",
    "topic_for",
    "upcaster",
]
