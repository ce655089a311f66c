"""Each week of a pilot: its checklist, the decisions it may end with, and their checks.

A decision is recorded for a week that has begun. ``launch`` (week 1) opens enrolment and
``expand`` (week 4) says the pilot earned a wider roll-out: both need every item of their
week's checklist confirmed. ``stop`` closes the pilot. The other decisions are recorded with
the items staff confirmed, for the report and the audit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.sequencer.domain.pilots import Pilot, PilotStatus
from shared.pilots import PHASE_OF_WEEK, PHASE_WORDS, Phase, phase_of

CHECKLISTS: dict[Phase, tuple[tuple[str, str], ...]] = {
    Phase.define: (
        ("eligibility", "The cohort is right: the preview shows who is in and why"),
        ("words", "The messages' words for this segment are approved, in every language"),
        ("escalation_route", "Clinical questions and red flags reach a person (on-call is set)"),
        ("holdout", "The launch group's size and the holdout share are agreed"),
    ),
    Phase.launch: (
        ("first_messages", "The first messages went out inside allowed hours"),
        ("replies_answered", "Every reply that needed a person was answered"),
        ("opt_outs", "Opt-outs stopped outreach at once"),
    ),
    Phase.review: (
        ("objections", "Objections were read by barrier, with example replies"),
        ("escalations", "Escalations were resolved within their targets"),
        ("adjustments", "Any change to words or timing is approved"),
    ),
    Phase.compare: (
        ("holdout", "Rebooking and completion compared with the holdout, with intervals"),
        ("previous_weeks", "...and with the previous weeks (observational)"),
        ("completed_visits", "Completed visits and revenue read, not clicks"),
    ),
    Phase.follow_up: (),
}
DECISIONS: dict[Phase, tuple[str, ...]] = {
    Phase.define: ("launch", "adjust", "stop"),
    Phase.launch: ("continue", "adjust", "stop"),
    Phase.review: ("continue", "adjust", "stop"),
    Phase.compare: ("expand", "adjust", "stop"),
    Phase.follow_up: ("expand", "adjust", "stop"),
}
NEEDS_FULL_CHECKLIST = frozenset({"launch", "expand"})
ADMIN_DECISIONS = frozenset({"launch", "stop"})  # they change what the pilot does
EVERY_DECISION = frozenset(d for ds in DECISIONS.values() for d in ds)


@dataclass(frozen=True)
class Decision:
    week: int
    phase: Phase
    decision: str
    checked: tuple[str, ...]


def check_decision(
    pilot: Pilot, week: int, decision: str, checked: Iterable[str], now: datetime
) -> Decision:
    """The decision as it will be recorded; ValueError saying exactly what is wrong."""
    if pilot.status is PilotStatus.draft or pilot.starts_at is None:
        raise ValueError("start the pilot first: week 1 (define) begins when it starts")
    current = pilot.week_of(now)
    if week > current:
        raise ValueError(f"week {week} has not begun: the pilot is in week {current}")
    phase = phase_of(week)
    if decision not in DECISIONS[phase]:
        allowed = ", ".join(DECISIONS[phase])
        raise ValueError(f"week {week} ({phase.value}) ends with one of: {allowed}")
    items = [key for key, _ in CHECKLISTS[phase]]
    ticked = tuple(dict.fromkeys(checked))
    unknown = [k for k in ticked if k not in items]
    if unknown:
        raise ValueError(
            f"week {week} ({phase.value}) has no checklist item {', '.join(unknown)}; "
            f"its items: {', '.join(items) or 'none'}"
        )
    missing = [k for k in items if k not in ticked]
    if decision in NEEDS_FULL_CHECKLIST and missing:
        raise ValueError(f"{decision} needs every item of week {week} confirmed; missing: "
                         + ", ".join(missing))  # fmt: skip
    if decision == "launch" and pilot.launched_at is not None:
        raise ValueError("this pilot has already been launched")
    if decision in ("launch", "stop") and pilot.status is not PilotStatus.running:
        raise ValueError(f"{decision} needs a running pilot")
    return Decision(week, phase, decision, ticked)


def phases(
    pilot: Pilot, reviews: Iterable[Mapping[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """Weeks 1-4 (and any later week begun) with their checklist, what was confirmed and the
    decisions recorded."""
    by_week: dict[int, list[Mapping[str, Any]]] = {}
    for r in reviews:
        by_week.setdefault(int(r["week"]), []).append(r)
    current = pilot.week_of(now) if pilot.starts_at else 0
    out = []
    for week in range(1, max(len(PHASE_OF_WEEK), current) + 1):
        phase = phase_of(week)
        recorded = by_week.get(week, [])
        confirmed = set(recorded[-1].get("checklist") or []) if recorded else set()
        out.append(
            {
                "week": week,
                "phase": phase.value,
                "what": PHASE_WORDS[phase],
                "current": week == current,
                "decisions_allowed": list(DECISIONS[phase]),
                "checklist": [
                    {"item": key, "words": words, "confirmed": key in confirmed}
                    for key, words in CHECKLISTS[phase]
                ],
                "decisions": [
                    {k: r[k] for k in ("decision", "note", "reviewed_by", "reviewed_at")}
                    for r in recorded
                ],
            }
        )
    return out
