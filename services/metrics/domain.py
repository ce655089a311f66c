"""Pure rules of metrics (skeleton scope): which events count toward which figure.

Figures are counted once per event (the inbox drops redeliveries) and grouped by clinic and
event type. Labels never carry a patient key: they are low-cardinality and PHI-free.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from shared.events import Envelope

# The funnel's steps in the order a practice reads them.
FUNNEL: dict[str, str] = {
    "PatientBecameEligible": "eligible",
    "SequenceStarted": "sequence_started",
    "MessageSent": "sent",
    "MessageDelivered": "delivered",
    "MessageBlocked": "blocked",
    "ReplyReceived": "replied",
    "OptedOut": "opted_out",
    "BookingRequested": "booking_requested",
    "AppointmentBooked": "booked",
    "VisitCompleted": "visit_completed",
    "EscalationRaised": "escalated",
}


def tally(events: Iterable[Envelope[Any]]) -> Counter[tuple[str, str]]:
    """(clinic_id, event_type) -> how many, for a batch of new events."""
    return Counter((e.clinic_id, e.type) for e in events)
