"""A pilot's shared rules: who its cohort takes, and the four weeks of the playbook.

Pure. The sequencer screens each new eligibility with :func:`screen` to enrol or hold it; metrics
screens the weeks before the launch with the same function to find the previous process's
cohort. A phase is a function of the pilot's first day (week 1) and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from shared.events.common import ClinicalUrgency, Initiator, Segment, ServiceLine
from shared.events.eligibility import PatientBecameEligible
from shared.events.pilot import CohortFilters

WEEK = timedelta(days=7)


@dataclass(frozen=True)
class NeedFacts:
    """What the cohort filters read of one eligibility (ids and codes only, no PHI)."""

    segment: Segment
    service_line: ServiceLine
    provider_id: str | None
    location_id: str | None
    urgency: ClinicalUrgency
    due_on: date  # the day the need came due (a cancellation: the day it was recorded)
    missed_reason: str | None = None  # cancellation reason code, or "no_show"
    cancelled_by: Initiator | None = None

    @classmethod
    def of(cls, event: PatientBecameEligible) -> NeedFacts:
        due = event.due_at.date() if event.due_at is not None else event.opens_on
        assert due is not None  # the payload requires one of them
        missed = event.missed
        return cls(
            segment=event.segment,
            service_line=event.service_line,
            provider_id=event.provider_id,
            location_id=event.location_id,
            urgency=event.clinical_urgency,
            due_on=due,
            missed_reason=missed.reason_code if missed else None,
            cancelled_by=None if missed is None or missed.no_show else missed.cancelled_by,
        )

    def age_days(self, at: datetime) -> int:
        return max(0, (at.date() - self.due_on).days)

    def as_dict(self) -> dict[str, str | None]:
        """JSON-ready, for screenings kept and shown to staff."""
        return {
            "segment": self.segment.value,
            "service_line": self.service_line.value,
            "provider_id": self.provider_id,
            "location_id": self.location_id,
            "urgency": self.urgency.value,
            "due_on": self.due_on.isoformat(),
            "cancellation_reason": self.missed_reason,
            "cancelled_by": self.cancelled_by.value if self.cancelled_by else None,
        }


@dataclass(frozen=True)
class Screening:
    """Whether a need is in a pilot's cohort, and why (each filter's verdict in words)."""

    taken: bool
    why: tuple[str, ...]


def _listed(values: Iterable[object]) -> str:
    return ", ".join(str(getattr(v, "value", v)) for v in values)


def _check(
    out: list[str],
    missing: list[str],
    name: str,
    allowed: tuple[object, ...] | None,
    value: object,
    shown: Callable[[object], str] = str,
) -> None:
    if allowed is None:
        return
    if value is None:
        missing.append(f"no {name} recorded (the cohort names {_listed(allowed)})")
    elif value in allowed:
        out.append(f"{name} {shown(value)}")
    else:
        missing.append(f"{name} {shown(value)} is not one the cohort names ({_listed(allowed)})")


def screen(segment: Segment, cohort: CohortFilters, need: NeedFacts, at: datetime) -> Screening:
    """``need`` against a pilot's segment and filters at ``at``; a filter it cannot show it
    meets leaves it out."""
    if need.segment is not segment:
        return Screening(False, (f"segment {need.segment.value}, not {segment.value}",))
    taken: list[str] = [f"segment {segment.value}"]
    left: list[str] = []

    def value(v: object) -> str:
        return str(getattr(v, "value", v))

    _check(taken, left, "service line", cohort.service_lines, need.service_line, value)
    _check(taken, left, "provider", cohort.provider_ids, need.provider_id)
    _check(taken, left, "location", cohort.location_ids, need.location_id)
    _check(taken, left, "cancellation reason", cohort.cancellation_reasons, need.missed_reason)
    _check(taken, left, "cancelled by", cohort.cancelled_by, need.cancelled_by, value)
    _check(taken, left, "urgency", cohort.urgencies, need.urgency, value)
    age = need.age_days(at)
    if cohort.min_age_days is not None and age < cohort.min_age_days:
        left.append(f"the need is {age} days old; the cohort takes {cohort.min_age_days} or more")
    elif cohort.max_age_days is not None and age > cohort.max_age_days:
        left.append(f"the need is {age} days old; the cohort takes {cohort.max_age_days} at most")
    elif cohort.min_age_days is not None or cohort.max_age_days is not None:
        taken.append(f"the need is {age} days old")
    if left:
        return Screening(False, tuple(left))
    return Screening(True, tuple(taken))


def describe(segment: Segment, cohort: CohortFilters) -> str:
    """The cohort definition in one line, for people."""
    parts = [f"segment {segment.value}"]
    named: list[tuple[str, tuple[object, ...] | None]] = [
        ("service lines", cohort.service_lines),
        ("providers", cohort.provider_ids),
        ("locations", cohort.location_ids),
        ("cancellation reasons", cohort.cancellation_reasons),
        ("cancelled by", cohort.cancelled_by),
        ("urgencies", cohort.urgencies),
    ]
    parts += [f"{name}: {_listed(values)}" for name, values in named if values is not None]
    if cohort.min_age_days is not None:
        parts.append(f"at least {cohort.min_age_days} days old")
    if cohort.max_age_days is not None:
        parts.append(f"at most {cohort.max_age_days} days old")
    return "; ".join(parts)


# --- the four weeks ---------------------------------------------------------------------------


class Phase(StrEnum):
    define = "define"
    launch = "launch"
    review = "review"
    compare = "compare"
    follow_up = "follow_up"  # after week 4: outcomes keep coming in


PHASE_OF_WEEK: dict[int, Phase] = {
    1: Phase.define,
    2: Phase.launch,
    3: Phase.review,
    4: Phase.compare,
}
PHASE_WORDS: dict[Phase, str] = {
    Phase.define: "define: eligibility, words and escalation route; nobody is messaged",
    Phase.launch: "launch to the small group",
    Phase.review: "review responses and objections, by barrier with example replies",
    Phase.compare: "compare rebooking and completion with the holdout and the previous weeks",
    Phase.follow_up: "after the pilot: follow outcomes",
}


def week_of(starts_at: datetime, at: datetime) -> int:
    """1 for the pilot's first seven days (define), 2 for the next (launch), and so on."""
    return max(1, (at - starts_at) // WEEK + 1)


def phase_of(week: int) -> Phase:
    return PHASE_OF_WEEK.get(week, Phase.follow_up)
