"""The sequencer's state: one row per sequence, one row of outreach facts per patient.

A patient has at most one active sequence (the database enforces it too). A sequence's pending
step is ``next_step`` at ``next_due``; it is *armed* (a timer exists) unless the patient's
outreach is paused, in which case it waits, unarmed, for the pause to lift.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from shared.events import Payload
from shared.events.common import (
    Channel,
    ClinicalUrgency,
    Purpose,
    Segment,
    SegmentKind,
    ServiceLine,
)
from shared.events.eligibility import Documented, PatientBecameEligible
from shared.events.escalations import CaseType
from shared.events.outreach import Arm, StopReason
from shared.ids import clinic_of as clinic_of  # re-exported: the one rule, in shared/

_T = TypeVar("_T")
STEP_TIMER = "step"
CLOSE_TIMER = "close"
SEND_MEMORY = timedelta(days=8)  # longer than the longest cap window
MAX_CLOSED = 200  # closed reminders kept per patient (years of needs)


def evolve(obj: _T, **changes: Any) -> _T:
    """``dataclasses.replace`` for the frozen state classes, without re-running ``__init__``.

    Sequence and Patient have no ``__post_init__`` checks, and copying the instance dictionary
    is ten times cheaper than building a 30-field frozen dataclass again: this is on the path
    of every step (bench/sequencer.py).
    """
    if not changes.keys() <= obj.__dict__.keys():
        raise TypeError(f"unknown fields: {sorted(changes.keys() - obj.__dict__.keys())}")
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    new.__dict__.update(changes)
    return new


class State(StrEnum):
    active = "active"
    stopped = "stopped"
    completed = "completed"


@dataclass(frozen=True)
class Sequence:
    sequence_id: str
    patient_key: str
    eligibility_id: str
    segment: Segment
    kind: SegmentKind
    service_line: ServiceLine
    workflow_key: str
    purpose: Purpose
    urgency: ClinicalUrgency
    provider_id: str | None
    location_id: str | None
    steps_planned: int
    started_at: datetime
    needs_marketing_consent: bool = False
    reason: str = ""  # the eligibility's plain reason, for staff (never a diagnosis)
    time_zone: str | None = None
    home_state: str | None = None  # the state of the patient's address (its hours apply)
    # What the eligibility documented, so each step can say it (None: an older eligibility).
    documented: Documented | None = None
    reminder_key: str = ""  # the need and its due date (see reminder_key)
    steps_sent: int = 0
    state: State = State.active
    stop_reason: StopReason | None = None
    next_step: int | None = None
    next_due: datetime | None = None
    armed: bool = False
    snoozed_until: datetime | None = None
    closes_at: datetime | None = None  # the close timer (after the last step, or a holdout)
    pilot_id: str | None = None
    arm: Arm = Arm.outreach
    failures: int = 0
    closed_at: datetime | None = None
    correlation_id: str | None = None

    @property
    def is_active(self) -> bool:
        return self.state is State.active

    @property
    def clinic_id(self) -> str:
        return clinic_of(self.patient_key)

    @property
    def is_holdout(self) -> bool:
        return self.arm is Arm.holdout

    def step_key(self, step: int) -> str:
        return f"{self.sequence_id}:{step}"


@dataclass(frozen=True)
class Send:
    """One outreach message commanded (or reported sent) for the patient, for the caps."""

    sequence_id: str
    step: int
    at: datetime


@dataclass(frozen=True)
class Patient:
    """What the sequencer knows about reaching one patient, across all their sequences."""

    patient_key: str
    time_zone: str | None = None
    home_state: str | None = None
    opt_outs: frozenset[str] = frozenset()  # "<channel|*>:<all|marketing>"
    escalations: Mapping[str, str] = field(default_factory=dict)  # open case id -> case type
    operator_paused: bool = False
    sends: tuple[Send, ...] = ()
    rest_until: datetime | None = None
    # Reminders whose last step told the patient no more messages would follow about them, or
    # that the patient declined: never started again (see reminder_key).
    closed_reminders: frozenset[str] = frozenset()

    def close_reminder(self, key: str) -> Patient:
        if not key or key in self.closed_reminders:
            return self
        kept = sorted(self.closed_reminders)[-(MAX_CLOSED - 1) :] if MAX_CLOSED > 1 else []
        return evolve(self, closed_reminders=frozenset([*kept, key]))

    def send_times(self) -> list[datetime]:
        return [s.at for s in self.sends]

    def may_use(self, channel: Channel, purpose: Purpose) -> bool:
        if not self.opt_outs:
            return True
        scopes = ["all"] + (["marketing"] if purpose is Purpose.marketing else [])
        return not any(f"{c}:{s}" in self.opt_outs for c in (channel.value, "*") for s in scopes)

    def pausing_cases(self, seq: Sequence | None) -> list[str]:
        """Open cases that pause ``seq``: all of them, except that a service-recovery sequence
        runs alongside the poor-experience case it exists for."""
        recovery = seq is not None and seq.workflow_key == "service_recovery"
        return [
            case_id
            for case_id, case_type in self.escalations.items()
            if not (recovery and case_type == CaseType.poor_experience.value)
        ]

    def paused_for(self, seq: Sequence | None) -> bool:
        return self.operator_paused or bool(self.pausing_cases(seq))

    def remember(self, send: Send, now: datetime) -> Patient:
        kept = [
            s
            for s in self.sends
            if (s.sequence_id, s.step) != (send.sequence_id, send.step) and s.at > now - SEND_MEMORY
        ]
        return evolve(self, sends=tuple(sorted([*kept, send], key=lambda s: s.at)))

    def forget(self, sequence_id: str, step: int) -> Patient:
        return evolve(
            self,
            sends=tuple(s for s in self.sends if (s.sequence_id, s.step) != (sequence_id, step)),
        )


class StepStatus(StrEnum):
    scheduled = "scheduled"  # planned, armed or waiting for a pause to lift
    commanded = "commanded"  # SendStep emitted
    sent = "sent"
    failed = "failed"
    blocked = "blocked"  # refused at send time for good (not deferred)
    deferred = "deferred"  # refused for now: quiet hours, caps, an escalation
    cancelled = "cancelled"  # the sequence stopped before it went


@dataclass(frozen=True)
class StepRecord:
    """A step's row as it changes; None fields keep what the row already holds."""

    sequence_id: str
    step: int
    status: StepStatus
    at: datetime
    note: str = ""  # why, as a fixed phrase (never the patient's words)
    channel: Channel | None = None
    template_key: str | None = None
    scheduled_for: datetime | None = None
    commanded_at: datetime | None = None


@dataclass(frozen=True)
class TimerOp:
    kind: str
    key: str
    due: datetime | None  # None: cancel
    sequence_id: str


@dataclass(frozen=True)
class Activity:
    """One fact for the audit trail and the pilot review (fixed vocabulary, no PHI)."""

    sequence_id: str
    kind: str  # e.g. "reply:decline", "barrier:cost", "opted_out", "stopped:booked"
    at: datetime


@dataclass
class Outcome:
    """What one decision changes; the shell saves and stages it in one transaction."""

    patient: Patient
    sequences: dict[str, Sequence] = field(default_factory=dict)
    events: list[Payload] = field(default_factory=list)
    timers: list[TimerOp] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    activity: list[Activity] = field(default_factory=list)
    patient_changed: bool = False

    def keep(self, seq: Sequence) -> Sequence:
        self.sequences[seq.sequence_id] = seq
        return seq

    def set_patient(self, patient: Patient) -> None:
        if patient != self.patient:
            self.patient = patient
            self.patient_changed = True


def reminder_key(event: PatientBecameEligible) -> str:
    """One reminder: the same need (segment, source record, service) with the same documented
    due date. A need that comes back due again later (the next review cycle) is a new one."""
    documented = event.documented
    due = documented.due_on.isoformat() if documented and documented.due_on else ""
    source = event.source_record
    return f"{event.segment.value}|{source.kind.value}|{source.id}|{event.service_line.value}|{due}"


def sequence_id_for(patient_key: str, eligibility_id: str, variant: str = "") -> str:
    raw = f"{patient_key}|{eligibility_id}" + (f"|{variant}" if variant else "")
    return f"seq-{hashlib.sha256(raw.encode()).hexdigest()[:20]}"
