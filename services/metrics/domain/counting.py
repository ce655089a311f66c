"""Counts kept per event as it passes (the inbox makes each event count once).

Labels never carry a patient key: they are low-cardinality and PHI-free.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from shared.events import Envelope

# The funnel's steps in the order a practice reads them: ``revisit_funnel_total`` counts the
# events at each step (one patient can pass a step more than once, e.g. two messages).
FUNNEL: dict[str, str] = {
    "PatientBecameEligible": "eligible",
    "SequenceStarted": "sequence_started",
    "MessageSent": "sent",
    "MessageDelivered": "delivered",
    "MessageBlocked": "blocked",
    "BookingLinkClicked": "clicked",
    "ReplyReceived": "replied",
    "OptedOut": "opted_out",
    "BookingRequested": "booking_requested",
    "AppointmentBooked": "booked",
    "VisitCompleted": "visit_completed",
    "EscalationRaised": "escalated",
}

# What happened to each outreach step at send time: (event type -> status).
SEND_STATUS: dict[str, str] = {
    "MessageSent": "sent",
    "MessageDelivered": "delivered",
    "MessageFailed": "failed",
    "MessageBlocked": "blocked",
}


def tally(events: Iterable[Envelope[Any]]) -> Counter[tuple[str, str]]:
    """(clinic_id, event_type) -> how many, for a batch of new events."""
    return Counter((e.clinic_id, e.type) for e in events)


def send_tally(events: Iterable[Envelope[Any]]) -> Counter[tuple[str, str, str, str]]:
    """(clinic_id, channel, status, reason) -> how many message outcomes in a batch.

    ``reason`` is the block reason or the failure kind ("" for sent and delivered); a block
    that could try no channel at all has channel "none".
    """
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for e in events:
        status = SEND_STATUS.get(e.type)
        if status is None:
            continue
        p = e.payload
        channel = p.channel.value if p.channel is not None else "none"
        reason = ""
        if e.type == "MessageBlocked":
            reason = p.reason.value
        elif e.type == "MessageFailed":
            reason = p.failure.value
        counts[(e.clinic_id, channel, status, reason)] += 1
    return counts
