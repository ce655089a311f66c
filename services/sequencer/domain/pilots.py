"""Pilots: a segment and its cohort filters, a launch group, a holdout share, four weeks.

The playbook's 30 days: week 1 *define* (the pilot screens every eligibility of its segment and
holds the ones its cohort takes: nobody is messaged), week 2 *launch* (from the recorded launch
decision, new eligibilities the cohort takes are enrolled until the launch group is full), week
3 *review* responses and objections, week 4 *compare*. While a pilot runs it owns what its
cohort takes: a need it cannot enrol (before the launch, or once the group is full) is held,
left to the practice's usual process exactly like the holdout. An *exclusive* pilot holds every
other eligibility of its clinic too: the practice messages nobody outside the launch group.

Assignment is deterministic per patient: ``sha256("<pilot_id>|<patient_key>")`` read as a
number in [0, 1); below the holdout share is the holdout arm. Holdout patients get a recorded
sequence that plans no steps and completes when the pilot's window ends.

Life: ``draft`` (editable) -> ``running`` (``starts_at`` .. ``ends_at``; enrolling from
``launched_at``) -> ``closed`` (no new enrolment; holdouts complete; outreach runs on).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from services.sequencer.domain.model import Outcome, Patient, Sequence, evolve
from services.sequencer.domain.steps import Context, stop
from shared.events.common import Segment
from shared.events.eligibility import PatientBecameEligible
from shared.events.outreach import Arm, StopReason
from shared.events.pilot import CohortFilters, PilotPlan
from shared.pilots import WEEK, NeedFacts, Phase, phase_of, screen, week_of


class PilotStatus(StrEnum):
    draft = "draft"
    running = "running"
    closed = "closed"


@dataclass(frozen=True)
class Pilot:
    pilot_id: str
    clinic_id: str
    name: str
    segment: Segment
    cohort_size: int  # the launch group's size cap
    holdout_share: float
    days: int = 30
    status: PilotStatus = PilotStatus.draft
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    closed_at: datetime | None = None
    enrolled: int = 0
    cohort: CohortFilters = field(default_factory=CohortFilters)
    exclusive: bool = False
    baseline_days: int = 28
    launched_at: datetime | None = None

    def owns(self, now: datetime) -> bool:
        """Running and inside its window: what its cohort takes is enrolled or held."""
        return (
            self.status is PilotStatus.running
            and self.starts_at is not None
            and self.ends_at is not None
            and self.starts_at <= now < self.ends_at
        )

    def launched(self, now: datetime) -> bool:
        return self.launched_at is not None and self.launched_at <= now

    def enrolling(self, now: datetime) -> bool:
        return self.owns(now) and self.launched(now) and self.enrolled < self.cohort_size

    def week_of(self, at: datetime) -> int:
        """1 for the pilot's first seven days (define), 2 for the next (launch), ..."""
        assert self.starts_at is not None
        return week_of(self.starts_at, at)

    def phase_at(self, at: datetime) -> Phase | None:
        return None if self.starts_at is None else phase_of(self.week_of(at))

    def plan(self) -> PilotPlan | None:
        if self.starts_at is None or self.ends_at is None or self.launched_at is None:
            return None
        return PilotPlan(
            segment=self.segment,
            cohort=self.cohort,
            starts_at=self.starts_at,
            launched_at=self.launched_at,
            ends_at=self.ends_at,
            baseline_days=self.baseline_days,
        )


def assignment_point(pilot_id: str, patient_key: str) -> float:
    digest = hashlib.sha256(f"{pilot_id}|{patient_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_arm(pilot_id: str, patient_key: str, holdout_share: float) -> Arm:
    return Arm.holdout if assignment_point(pilot_id, patient_key) < holdout_share else Arm.outreach


def start(pilot: Pilot, now: datetime) -> Pilot:
    """Week 1 begins: the pilot screens and holds its cohort; nobody is messaged yet."""
    if pilot.status is not PilotStatus.draft:
        raise ValueError("only a draft pilot can be started")
    if timedelta(days=pilot.days) <= WEEK:
        raise ValueError("a pilot needs more days than its define week (days > 7)")
    return replace(
        pilot, status=PilotStatus.running, starts_at=now, ends_at=now + timedelta(days=pilot.days)
    )


def launch(pilot: Pilot, now: datetime) -> Pilot:
    """The week-1 decision to launch: enrolment opens now, or when week 2 begins if sooner."""
    if pilot.status is not PilotStatus.running or pilot.starts_at is None:
        raise ValueError("only a running pilot can be launched")
    if pilot.launched_at is not None:
        raise ValueError("this pilot has already been launched")
    assert pilot.ends_at is not None
    opens = max(now, pilot.starts_at + WEEK)
    if opens >= pilot.ends_at:
        raise ValueError("the pilot's window has ended: there is no time left to enrol")
    return replace(pilot, launched_at=opens)


def close(pilot: Pilot, now: datetime) -> Pilot:
    if pilot.status is not PilotStatus.running:
        raise ValueError("only a running pilot can be closed")
    return replace(pilot, status=PilotStatus.closed, closed_at=now)


# --- what a pilot does with a new eligibility --------------------------------------------------


class Verdict(StrEnum):
    enrolled = "enrolled"
    held = "held"  # the cohort takes it, but nobody may message it now: usual process
    out = "out"  # the cohort does not take it
    exclusive = "exclusive"  # outside the cohort, held while an exclusive pilot runs


@dataclass(frozen=True)
class Screened:
    pilot_id: str
    verdict: Verdict
    why: tuple[str, ...]
    arm: Arm | None = None
    counts: bool = False  # a new enrolment (a patient already in the cohort does not count)


def consider(
    pilot: Pilot, need: NeedFacts, patient_key: str, now: datetime, known: Arm | None
) -> Screened | None:
    """What ``pilot`` does with a new eligibility; None when it does not own it (another
    segment, or the pilot is not running now)."""
    if not pilot.owns(now) or need.segment is not pilot.segment:
        return None
    if known is not None and pilot.launched(now):
        return Screened(pilot.pilot_id, Verdict.enrolled, ("already in this pilot",), known)
    screening = screen(pilot.segment, pilot.cohort, need, now)
    if not screening.taken:
        return Screened(pilot.pilot_id, Verdict.out, screening.why)
    if not pilot.launched(now):
        when = (
            f"the launch on {pilot.launched_at:%Y-%m-%d}"
            if pilot.launched_at
            else "the launch decision"
        )
        held = f"held until {when}: nobody in the cohort is messaged in week 1 (define)"
        return Screened(pilot.pilot_id, Verdict.held, (*screening.why, held))
    if pilot.enrolled >= pilot.cohort_size:
        full = f"held: the launch group is full ({pilot.cohort_size})"
        return Screened(pilot.pilot_id, Verdict.held, (*screening.why, full))
    arm = assign_arm(pilot.pilot_id, patient_key, pilot.holdout_share)
    return Screened(pilot.pilot_id, Verdict.enrolled, screening.why, arm, counts=True)


EXCLUSIVE_HOLD = "held: an exclusive pilot runs, and this need is outside its cohort"


def exclusive_hold(pilots: Iterable[Pilot], now: datetime) -> Screened | None:
    """An exclusive pilot running now holds a need no pilot took (recorded on its screening)."""
    for pilot in pilots:
        if pilot.exclusive and pilot.owns(now):
            return Screened(pilot.pilot_id, Verdict.exclusive, (EXCLUSIVE_HOLD,))
    return None


def hold(
    patient: Patient, active: Sequence | None, event: PatientBecameEligible, ctx: Context
) -> Outcome:
    """A need a pilot holds: no sequence opens (the practice's usual process). It is still the
    segmenter's newest need, so it supersedes the patient's active sequence."""
    out = Outcome(patient)
    if event.time_zone is not None and event.time_zone != patient.time_zone:
        out.set_patient(evolve(patient, time_zone=event.time_zone))
    if active is not None and active.eligibility_id != event.eligibility_id:
        stop(out, active, StopReason.superseded, ctx)
    return out


# --- the weekly figures ------------------------------------------------------------------------

REVIEW_FIGURES = (
    "enrolled",
    "steps_commanded",
    "messages_sent",
    "replies",
    "opted_out",
    "booking_requested",
    "booked",
    "care_completed",
    "declined",
    "no_longer_needed",
    "sequences_completed",
)


@dataclass
class ArmWeek:
    figures: Counter[str] = field(default_factory=Counter)
    intents: Counter[str] = field(default_factory=Counter)
    barriers: Counter[str] = field(default_factory=Counter)
    stops: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            **{name: self.figures.get(name, 0) for name in REVIEW_FIGURES},
            "reply_intents": dict(self.intents),
            "barriers": dict(self.barriers),
            "stops": dict(self.stops),
        }


_FIGURE_OF = {
    "message_sent": "messages_sent",
    "opted_out": "opted_out",
    "booking_requested": "booking_requested",
    "stopped:booked": "booked",
    "stopped:completed": "care_completed",
    "stopped:declined": "declined",
    "stopped:no_longer_needed": "no_longer_needed",
    "completed": "sequences_completed",
}


def review(
    pilot: Pilot, facts: Iterable[tuple[str, str, datetime]]
) -> dict[int, dict[str, ArmWeek]]:
    """Week -> arm -> figures, from ``(arm, activity kind, at)`` facts of the pilot's sequences.

    The kinds are the activity vocabulary (``started:<arm>``, ``step_commanded``,
    ``reply:<intent>``, ``barrier:<barrier>``, ``stopped:<reason>``, ...), so every figure is a
    count of recorded facts, never an inference.
    """
    weeks: dict[int, dict[str, ArmWeek]] = {}
    for arm, kind, at in facts:
        cell = weeks.setdefault(pilot.week_of(at), {}).setdefault(arm, ArmWeek())
        if kind.startswith("started:"):
            cell.figures["enrolled"] += 1
        elif kind == "step_commanded":
            cell.figures["steps_commanded"] += 1
        elif kind.startswith("reply:"):
            cell.figures["replies"] += 1
            cell.intents[kind.partition(":")[2]] += 1
        elif kind.startswith("barrier:"):
            cell.barriers[kind.partition(":")[2]] += 1
        if kind.startswith("stopped:"):
            cell.stops[kind.partition(":")[2]] += 1
        if kind in _FIGURE_OF:
            cell.figures[_FIGURE_OF[kind]] += 1
    return weeks
