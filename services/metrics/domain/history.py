"""What metrics remembers about one patient: the facts its figures are computed from.

Events for one patient arrive on seven topics, so they can arrive in any order across topics
(a booking before the message that preceded it), and a relay may deliver one twice. ``record``
therefore merges each event into the history by its natural id (eligibility, sequence,
message, appointment, visit, escalation) with order-free rules (earliest time wins, a newer EHR
source version wins): the same events in any order, any number of times, give the same history.
Figures are then derived from the whole history (``attribution``), never counted as events pass.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from shared.events import Envelope
from shared.events.common import Channel, ClinicalUrgency, Segment, SegmentKind, ServiceLine
from shared.events.eligibility import MissedAppointment, RebookedBy
from shared.events.escalations import CaseType, Severity
from shared.events.messages import Barrier, ConsentScope, ReplyIntent
from shared.events.outreach import Arm

# The event types that change a patient's history; every other type is only counted.
RECORDED: frozenset[str] = frozenset(
    {
        "PatientBecameEligible",
        "PatientLeftSegment",
        "SequenceStarted",
        "SequenceStopped",
        "SequenceCompleted",
        "MessageSent",
        "MessageDelivered",
        "MessageFailed",
        "BookingLinkClicked",
        "ReplyReceived",
        "OptedOut",
        "AppointmentBooked",
        "AppointmentRescheduled",
        "AppointmentCancelled",
        "AppointmentNoShow",
        "AppointmentKept",
        "VisitCompleted",
        "EscalationRaised",
        "EscalationAcknowledged",
        "EscalationResolved",
    }
)


class Fact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EligibilityFacts(Fact):
    segment: Segment
    kind: SegmentKind
    service_line: ServiceLine
    at: datetime  # when the patient became eligible (earliest event seen for it)
    announced: bool = False  # PatientBecameEligible itself was seen (not only a later event)
    left_at: datetime | None = None
    left_reason: str | None = None
    # What a pilot's cohort filters read (shared/pilots.py), and which bookings meet the need
    # (the segmenter's rule); None when only a later event, or an older eligibility, was seen.
    provider_id: str | None = None
    location_id: str | None = None
    urgency: ClinicalUrgency | None = None
    due_at: datetime | None = None  # when the need came due (a window's first day, 00:00 UTC)
    missed: MissedAppointment | None = None
    rebooked_by: RebookedBy | None = None


class SequenceFacts(Fact):
    eligibility_id: str | None = None
    segment: Segment | None = None
    service_line: ServiceLine | None = None
    workflow_key: str | None = None
    pilot_id: str | None = None
    arm: Arm | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None


class MessageFacts(Fact):
    sequence_id: str
    channel: Channel
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    failed_at: datetime | None = None


class ClickFacts(Fact):
    """A step's tracked booking link, opened (the first time)."""

    sequence_id: str
    at: datetime


class ReplyFacts(Fact):
    at: datetime
    intent: ReplyIntent
    barrier: Barrier | None = None
    sequence_id: str | None = None
    in_reply_to: str | None = None


class OptOutFacts(Fact):
    at: datetime
    channel: Channel | None
    scope: ConsentScope


class BookingFacts(Fact):
    service_line: ServiceLine | None = None
    booked_at: datetime | None = None  # None: only a later change of it was seen
    start: datetime | None = None
    source_at: datetime | None = None  # EHR version of service_line/start
    cancelled_at: datetime | None = None
    no_show_at: datetime | None = None
    kept_at: datetime | None = None


class VisitFacts(Fact):
    appointment_id: str | None
    completed_at: datetime
    charge_cents: int
    currency: str
    source_at: datetime


class EscalationFacts(Fact):
    raised_at: datetime | None = None
    severity: Severity | None = None
    case_type: CaseType | None = None
    sequence_id: str | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None


class PatientHistory(Fact):
    clinic_id: str
    patient_key: str
    eligibilities: dict[str, EligibilityFacts] = {}
    sequences: dict[str, SequenceFacts] = {}
    messages: dict[str, MessageFacts] = {}
    clicks: dict[str, ClickFacts] = {}  # "<sequence_id>:<step>"
    replies: dict[str, ReplyFacts] = {}
    opt_outs: dict[str, OptOutFacts] = {}
    bookings: dict[str, BookingFacts] = {}
    visits: dict[str, VisitFacts] = {}
    escalations: dict[str, EscalationFacts] = {}


F = TypeVar("F", bound=Fact)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _merge(current: F | None, new: F, **earliest: datetime | None) -> F:
    """``new`` where ``current`` has nothing; for the named times, the earliest of the two."""
    if current is None:
        return new
    update: dict[str, Any] = {
        name: value
        for name, value in new.model_dump(exclude_none=True).items()
        if getattr(current, name) is None
    }
    for name, value in earliest.items():
        update[name] = _earliest(getattr(current, name), value)
    return current.model_copy(update=update)


def _put(history: PatientHistory, table: str, key: str, value: Fact) -> PatientHistory:
    facts = dict(getattr(history, table))
    facts[key] = value
    return history.model_copy(update={table: facts})


def record(history: PatientHistory, event: Envelope[Any]) -> PatientHistory:
    """``history`` with ``event`` merged in; recording an event twice changes nothing."""
    p, at, t = event.payload, event.occurred_at, event.type
    if t in ("PatientBecameEligible", "PatientLeftSegment"):
        return _record_eligibility(history, event)
    if t == "SequenceStarted":
        seq = SequenceFacts(
            eligibility_id=p.eligibility_id,
            segment=p.segment,
            service_line=p.service_line,
            workflow_key=p.workflow_key,
            pilot_id=p.pilot_id,
            arm=p.arm,
            started_at=at,
        )
        merged = _merge(history.sequences.get(p.sequence_id), seq, started_at=at)
        history = _put(history, "sequences", p.sequence_id, merged)
        # A sequence can be read before its eligibility (another topic): infer the eligibility
        # until its announcement arrives, which then wins.
        cur = history.eligibilities.get(p.eligibility_id)
        if cur is None:
            cur = EligibilityFacts(
                segment=p.segment, kind=p.kind, service_line=p.service_line, at=at
            )
        elif not cur.announced:
            cur = cur.model_copy(update={"at": min(cur.at, at)})
        return _put(history, "eligibilities", p.eligibility_id, cur)
    if t in ("SequenceStopped", "SequenceCompleted"):
        reason = p.reason.value if t == "SequenceStopped" else "all_steps_sent"
        cur_s = history.sequences.get(p.sequence_id) or SequenceFacts()
        if cur_s.ended_at is None or at < cur_s.ended_at:
            cur_s = cur_s.model_copy(update={"ended_at": at, "end_reason": reason})
        return _put(history, "sequences", p.sequence_id, cur_s)
    if t in ("MessageSent", "MessageDelivered", "MessageFailed"):
        field = {"MessageSent": "sent_at", "MessageDelivered": "delivered_at"}.get(t, "failed_at")
        msg = MessageFacts(sequence_id=p.sequence_id, channel=p.channel, **{field: at})
        merged_msg = _merge(history.messages.get(p.message_id), msg, **{field: at})
        return _put(history, "messages", p.message_id, merged_msg)
    if t == "BookingLinkClicked":
        key = f"{p.sequence_id}:{p.step}"
        click = _merge(history.clicks.get(key), ClickFacts(sequence_id=p.sequence_id, at=at), at=at)
        return _put(history, "clicks", key, click)
    if t == "ReplyReceived":
        reply = ReplyFacts(
            at=at,
            intent=p.intent,
            barrier=p.barrier,
            sequence_id=p.sequence_id,
            in_reply_to=p.in_reply_to_message_id,
        )
        return _put(history, "replies", p.reply_message_id, reply)
    if t == "OptedOut":
        opt = OptOutFacts(at=at, channel=p.channel, scope=p.scope)
        return _put(history, "opt_outs", str(event.event_id), opt)
    if t.startswith("Appointment"):
        return _record_appointment(history, event)
    if t == "VisitCompleted":
        cur_v = history.visits.get(p.visit_id)
        source_at = p.source.source_updated_at
        if cur_v is not None and cur_v.source_at >= source_at:
            return history  # this version of the visit, or a newer one, is already recorded
        visit = VisitFacts(
            appointment_id=p.appointment_id,
            completed_at=p.completed_at,
            charge_cents=sum(s.charge_cents for s in p.services),
            currency=p.services[0].currency if p.services else "USD",
            source_at=source_at,
        )
        return _put(history, "visits", p.visit_id, visit)
    if t.startswith("Escalation"):
        return _record_escalation(history, event)
    return history


def _record_eligibility(history: PatientHistory, event: Envelope[Any]) -> PatientHistory:
    p, at = event.payload, event.occurred_at
    cur = history.eligibilities.get(p.eligibility_id)
    if event.type == "PatientBecameEligible":
        announced_at = at if cur is None or not cur.announced else min(cur.at, at)
        new = EligibilityFacts(
            segment=p.segment,
            kind=p.kind,
            service_line=p.service_line,
            at=announced_at,
            announced=True,
            left_at=cur.left_at if cur else None,
            left_reason=cur.left_reason if cur else None,
            provider_id=p.provider_id,
            location_id=p.location_id,
            urgency=p.clinical_urgency,
            due_at=p.due_at or datetime.combine(p.opens_on, time(), UTC),
            missed=p.missed,
            rebooked_by=p.rebooked_by,
        )
        return _put(history, "eligibilities", p.eligibility_id, new)
    if cur is None:
        cur = EligibilityFacts(segment=p.segment, kind=p.kind, service_line=p.service_line, at=at)
    elif not cur.announced:
        cur = cur.model_copy(update={"at": min(cur.at, at)})
    if cur.left_at is None or at < cur.left_at:
        cur = cur.model_copy(update={"left_at": at, "left_reason": p.reason.value})
    return _put(history, "eligibilities", p.eligibility_id, cur)


def _record_appointment(history: PatientHistory, event: Envelope[Any]) -> PatientHistory:
    p, at = event.payload, event.occurred_at
    cur = history.bookings.get(p.appointment_id) or BookingFacts()
    source_at = p.source.source_updated_at
    update: dict[str, Any] = {}
    if cur.source_at is None or source_at > cur.source_at:
        # What the appointment is for and when: the newest EHR version says.
        update = {"service_line": p.service_line, "start": p.start, "source_at": source_at}
    stamp = _APPOINTMENT_STAMPS.get(event.type)
    if stamp is not None:
        update[stamp] = _earliest(getattr(cur, stamp), at)
    return _put(history, "bookings", p.appointment_id, cur.model_copy(update=update))


_APPOINTMENT_STAMPS = {
    "AppointmentBooked": "booked_at",
    "AppointmentCancelled": "cancelled_at",
    "AppointmentNoShow": "no_show_at",
    "AppointmentKept": "kept_at",
}


def _record_escalation(history: PatientHistory, event: Envelope[Any]) -> PatientHistory:
    p, at, t = event.payload, event.occurred_at, event.type
    cur = history.escalations.get(p.escalation_id)
    if t == "EscalationRaised":
        new = EscalationFacts(
            raised_at=at, severity=p.severity, case_type=p.case_type, sequence_id=p.sequence_id
        )
        merged = _merge(cur, new, raised_at=at)
    elif t == "EscalationAcknowledged":
        merged = _merge(cur, EscalationFacts(acknowledged_at=at), acknowledged_at=at)
    elif t == "EscalationResolved":
        merged = _merge(cur, EscalationFacts(resolved_at=at), resolved_at=at)
    else:
        return history  # paged: counted, not part of response times
    return _put(history, "escalations", p.escalation_id, merged)
