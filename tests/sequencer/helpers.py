"""Builders for the sequencer tests: events, contexts, and a tiny in-memory driver of the core."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.sequencer.domain import lifecycle, reactions
from services.sequencer.domain.model import (
    CLOSE_TIMER,
    STEP_TIMER,
    Outcome,
    Patient,
    Sequence,
    TimerOp,
    sequence_id_for,
)
from services.sequencer.domain.rules import Rules
from services.sequencer.domain.steps import Context
from services.sequencer.domain.workflows import Catalogue
from services.sequencer.handlers import ESCALATIONS, MESSAGES, REPLIES
from shared.events import Payload
from shared.events.common import (
    Channel,
    ClinicalUrgency,
    Segment,
    SegmentKind,
    ServiceLine,
    SourceRecord,
    SourceRecordKind,
)
from shared.events.eligibility import (
    LeftReason,
    MissedAppointment,
    PatientBecameEligible,
    PatientLeftSegment,
)
from shared.events.outreach import SendStep

NY = "America/New_York"
# A Tuesday, 10:00 in New York (EST).
T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)
KINDS = {
    Segment.cancelled_not_rescheduled: SegmentKind.reactivation,
    Segment.lapsed_patient: SegmentKind.reactivation,
    Segment.question_no_review: SegmentKind.reactivation,
    Segment.consult_no_treatment: SegmentKind.reactivation,
}


def eligible(
    eligibility_id: str = "elig-1",
    segment: Segment = Segment.cancelled_not_rescheduled,
    line: ServiceLine = ServiceLine.skin_check,
    *,
    due_at: datetime | None = None,
    opens_on: date | None = None,
    marketing: bool = False,
    urgency: ClinicalUrgency = ClinicalUrgency.routine,
    time_zone: str | None = None,
    missed: MissedAppointment | None = None,
    provider_id: str = "dr-1",
) -> PatientBecameEligible:
    if due_at is None and opens_on is None:
        due_at = T0
    return PatientBecameEligible(
        eligibility_id=eligibility_id,
        segment=segment,
        kind=KINDS.get(segment, SegmentKind.recall),
        service_line=line,
        reason="Skin check appointment was cancelled; nothing is booked to replace it",
        source_record=SourceRecord(kind=SourceRecordKind.appointment, id="appt-1"),
        due_at=due_at,
        opens_on=opens_on,
        clinical_urgency=urgency,
        needs_marketing_consent=marketing,
        provider_id=provider_id,
        location_id="loc-1",
        time_zone=time_zone,
        missed=missed,
    )


def left(
    eligibility_id: str = "elig-1",
    reason: LeftReason = LeftReason.booked,
    segment: Segment = Segment.cancelled_not_rescheduled,
) -> PatientLeftSegment:
    return PatientLeftSegment(
        eligibility_id=eligibility_id,
        segment=segment,
        kind=KINDS.get(segment, SegmentKind.recall),
        service_line=ServiceLine.skin_check,
        reason=reason,
    )


def context(now: datetime, rules: Rules | None = None) -> Context:
    return Context(now=now, rules=rules or Rules(zone=NY), catalogue=Catalogue.default())


@dataclass
class Driver:
    """Runs the pure core the way the shell does: state kept in memory, timers in a dict,
    every event emitted recorded in order. ``advance`` fires due timers in due order."""

    now: datetime = T0
    rules: Rules = field(default_factory=lambda: Rules(zone=NY))
    key: str = "clinic-a:p-1"
    patient: Patient = field(init=False)
    sequences: dict[str, Sequence] = field(default_factory=dict)
    timers: dict[tuple[str, str], datetime] = field(default_factory=dict)
    events: list[tuple[datetime, Payload]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.patient = Patient(patient_key=self.key)

    @property
    def ctx(self) -> Context:
        return context(self.now, self.rules)

    @property
    def active(self) -> Sequence | None:
        live = [s for s in self.sequences.values() if s.is_active]
        assert len(live) <= 1, "more than one active sequence"
        return live[0] if live else None

    def apply(self, out: Outcome) -> Outcome:
        self.patient = out.patient
        self.sequences.update(out.sequences)
        for op in out.timers:
            self._timer(op)
        self.events.extend((self.now, e) for e in out.events)
        return out

    def _timer(self, op: TimerOp) -> None:
        if op.due is None:
            self.timers.pop((op.kind, op.key), None)
        else:
            self.timers[(op.kind, op.key)] = op.due

    def feed(self, payload: Payload, sequence_id: str | None = None) -> Outcome:
        active = self.active
        name = sequence_id or getattr(payload, "sequence_id", None)
        named = self.sequences.get(name) if name else None
        if isinstance(payload, PatientBecameEligible):
            existing = self.sequences.get(sequence_id_for(self.key, payload.eligibility_id))
            return self.apply(
                lifecycle.on_eligible(self.patient, active, payload, self.ctx, None, existing)
            )
        if isinstance(payload, PatientLeftSegment):
            return self.apply(lifecycle.on_left(self.patient, active, payload, self.ctx))
        if isinstance(payload, REPLIES):
            return self.apply(reactions.on_reply(self.patient, named or active, payload, self.ctx))
        if isinstance(payload, MESSAGES):
            return self.apply(reactions.on_message(self.patient, named, payload, self.ctx))
        if isinstance(payload, ESCALATIONS):
            return self.apply(reactions.on_escalation(self.patient, active, payload, self.ctx))
        raise AssertionError(f"unexpected {type(payload).__name__}")

    def operate(self, action: Any) -> Outcome:
        return self.apply(action(self.patient, self.active, self.ctx))

    def advance(self, delta: timedelta) -> None:
        """Move time forward, firing every timer that falls due, in order."""
        until = self.now + delta
        while True:
            due = sorted((t, k) for k, t in self.timers.items() if t <= until)
            if not due:
                break
            at, (kind, key) = due[0]
            del self.timers[(kind, key)]
            self.now = max(self.now, at)
            if kind == STEP_TIMER:
                sid, _, step = key.rpartition(":")
                out = lifecycle.on_step_due(self.patient, self.sequences[sid], int(step), self.ctx)
            else:
                assert kind == CLOSE_TIMER
                out = lifecycle.on_close_due(self.patient, self.sequences[key], self.ctx)
            self.apply(out)
        self.now = until

    def sends(self) -> list[tuple[datetime, SendStep]]:
        return [(at, e) for at, e in self.events if isinstance(e, SendStep)]

    def of_type(self, cls: type[Payload]) -> list[Any]:
        return [e for _, e in self.events if isinstance(e, cls)]


def message_id() -> str:
    return f"msg-{uuid.uuid4().hex[:8]}"


SMS, EMAIL = Channel.sms, Channel.email
