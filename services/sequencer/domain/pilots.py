"""Pilots: one segment, a cohort, a holdout share, a start and an end.

Assignment is deterministic per patient: ``sha256("<pilot_id>|<patient_key>")`` read as a
number in [0, 1); below the holdout share is the holdout arm. The same patient always lands in
the same arm of the same pilot, whichever replica asks and however often. Holdout patients get
a recorded sequence that plans no steps (the practice's previous process, or nothing) and
completes when the pilot's window ends, so metrics compare like with like.

Life: ``draft`` (editable) -> ``running`` (enrolling between ``starts_at`` and ``ends_at`` until
the cohort is full) -> ``closed`` (no new enrolment; holdouts complete; outreach runs on).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from shared.events.common import Segment
from shared.events.outreach import Arm


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
    cohort_size: int
    holdout_share: float
    days: int = 30
    status: PilotStatus = PilotStatus.draft
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    closed_at: datetime | None = None
    enrolled: int = 0

    def enrolling(self, now: datetime) -> bool:
        return (
            self.status is PilotStatus.running
            and self.starts_at is not None
            and self.ends_at is not None
            and self.starts_at <= now < self.ends_at
            and self.enrolled < self.cohort_size
        )

    def week_of(self, at: datetime) -> int:
        """1 for the pilot's first seven days, 2 for the next, ..."""
        assert self.starts_at is not None
        return max(1, (at - self.starts_at) // timedelta(days=7) + 1)


def assignment_point(pilot_id: str, patient_key: str) -> float:
    digest = hashlib.sha256(f"{pilot_id}|{patient_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_arm(pilot_id: str, patient_key: str, holdout_share: float) -> Arm:
    return Arm.holdout if assignment_point(pilot_id, patient_key) < holdout_share else Arm.outreach


def start(pilot: Pilot, now: datetime) -> Pilot:
    if pilot.status is not PilotStatus.draft:
        raise ValueError("only a draft pilot can be started")
    return replace(
        pilot, status=PilotStatus.running, starts_at=now, ends_at=now + timedelta(days=pilot.days)
    )


def close(pilot: Pilot, now: datetime) -> Pilot:
    if pilot.status is not PilotStatus.running:
        raise ValueError("only a running pilot can be closed")
    return replace(pilot, status=PilotStatus.closed, closed_at=now)


# --- the weekly review -------------------------------------------------------------------------

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
