"""Cases handed to people, and their lifecycle (topic ``escalations.v1``).

The messenger raises a case; the escalation service pages the on-call rotation and records the
acknowledgement and the resolution; the sequencer pauses outreach while a case is open.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from shared.events.common import Channel, Id, ServiceLine
from shared.events.envelope import Payload, register


class CaseType(StrEnum):
    red_flag = "red_flag"
    clinical_question = "clinical_question"
    unresolved_concern = "unresolved_concern"
    poor_experience = "poor_experience"
    booking_failed = "booking_failed"
    unclassified_reply = "unclassified_reply"
    delivery_failures = "delivery_failures"
    # A patient chose a time but Revisit cannot write it to the EHR (no write access, or the EHR
    # refused): staff book it by hand from the messenger's booking task.
    booking_by_hand = "booking_by_hand"
    # The EHR has no patient, or several, with the patient's record number: a person checks
    # who they are before anything is booked.
    patient_not_matched = "patient_not_matched"


class Severity(StrEnum):
    urgent = "urgent"  # page now, any hour
    high = "high"  # page within business hours
    normal = "normal"
    low = "low"


class Outcome(StrEnum):
    answered = "answered"
    booked = "booked"
    no_action = "no_action"
    referred = "referred"


_CONTACT_LIKE = re.compile(r"@|\d{5,}|https?://", re.IGNORECASE)


def _fixed_phrase(value: str) -> str:
    # A cheap guard, not the rule: the rule is that summaries come from a fixed catalogue.
    if _CONTACT_LIKE.search(value):
        raise ValueError("summary must be a fixed phrase: no addresses, numbers or links")
    return value


Summary = Annotated[
    str, StringConstraints(min_length=3, max_length=120), AfterValidator(_fixed_phrase)
]
"""What the responder needs to know before opening the case, e.g. "Patient reports a new or
changing mole after a skin-check recall". It MUST be a fixed phrase chosen by case type and
service line, never the patient's words: the reply itself is read in the messenger's
conversation view through ``source_message_id``."""


@register("EscalationRaised", version=1)
class EscalationRaised(Payload):
    """Emitted when a reply or a delivery problem needs a person."""

    escalation_id: Id
    case_type: CaseType
    severity: Severity
    summary: Summary
    source_message_id: Id | None = None  # the reply that raised it; None for delivery failures
    sequence_id: Id | None = None
    service_line: ServiceLine | None = None
    channel: Channel | None = None  # where the patient is waiting for an answer


@register("EscalationPaged", version=1)
class EscalationPaged(Payload):
    """Emitted each time the escalation service pages an on-call responder about a case."""

    escalation_id: Id
    rotation_id: Id
    responder_id: Id  # opaque staff id
    attempt: Annotated[int, Field(ge=1, le=20)]


@register("EscalationAcknowledged", version=1)
class EscalationAcknowledged(Payload):
    """Emitted when a responder takes ownership of a case."""

    escalation_id: Id
    responder_id: Id


@register("EscalationResolved", version=1)
class EscalationResolved(Payload):
    """Emitted when a responder closes a case; ``resume_outreach`` lets the sequence continue."""

    escalation_id: Id
    outcome: Outcome
    resolved_by: Id  # opaque staff id
    resume_outreach: bool = False


PAYLOADS: tuple[type[Payload], ...] = (
    EscalationRaised,
    EscalationPaged,
    EscalationAcknowledged,
    EscalationResolved,
)
