"""A pilot's figures as plain data, read from the metrics service's answers.

``read_pilot_figures`` takes the JSON of ``GET /reports/pilots/{id}`` (both arms counted from
assignment, the differences with Newcombe's 95% interval, the previous weeks' comparison, week
by week, the objections by barrier) and, optionally, of
``GET /reports/barriers?pilot_id=...&group_by=week`` (replies and opt-outs by calendar week)
and the week-3 review's objections with the words of their example replies. Everything here is
pure: the report and the charts only format what it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

ARMS = ("outreach", "holdout")
ARM_LABELS = {"outreach": "Messaged (pilot)", "holdout": "Usual process (control)"}
PREVIOUS_LABEL = "Previous weeks (observational)"
COMPARED = {"rebooked_rate": "rebooked", "completed_rate": "completed visit"}

# Who a segment's patients are, in the front desk's words, for the headline.
SEGMENT_WORDS = {
    "cancelled_not_rescheduled": "patients who cancelled",
    "follow_up_not_booked": "patients whose follow-up was never booked",
    "series_incomplete": "patients who left a treatment series part done",
    "cosmetic_maintenance_due": "patients due for cosmetic upkeep",
    "chronic_review_overdue": "patients overdue for a review",
    "question_no_review": "patients who asked a question and were never seen",
    "lapsed_patient": "patients who stopped coming",
    "consult_no_treatment": "patients who never started recommended treatment",
}
INTENT_WORDS = {
    "book": "wants to book",
    "choose_slot": "picked a slot",
    "later": "later",
    "decline": "declined",
    "no_longer_needed": "no longer needed",
    "question": "question",
    "clinical_concern": "clinical concern",
    "red_flag": "red flag",
    "wrong_number": "wrong number",
    "help": "asked for help",
    "unknown": "unclear",
}
BARRIER_WORDS = {
    "timing": "timing",
    "cost": "cost",
    "uncertainty": "unsure it is needed",
    "unresolved_concern": "unresolved concern",
    "poor_experience": "poor experience",
}


@dataclass(frozen=True)
class ArmFigures:
    """One arm of a pilot, counted from assignment (intent to treat)."""

    arm: str
    assigned: int = 0
    messaged: int = 0
    clicked: int = 0  # opened the booking link: shown, never the headline
    replied: int = 0
    opted_out: int = 0
    rebooked: int = 0
    completed: int = 0
    revenue_cents: int = 0

    def share(self, count: int) -> float | None:
        return count / self.assigned if self.assigned else None


@dataclass(frozen=True)
class Difference:
    """Messaged minus usual process for one rate, with its 95% interval (None: not computable)."""

    figure: str  # "rebooked_rate" | "completed_rate"
    outreach: float | None
    holdout: float | None
    estimate: float | None
    low: float | None
    high: float | None

    @property
    def shown(self) -> bool:
        """True when the interval excludes 0: a difference the pilot has actually shown."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)


@dataclass(frozen=True)
class WeekCounts:
    """One arm in one pilot week (week 1 = the seven days from the first assignment)."""

    week: int
    arm: str
    assigned: int = 0
    messaged: int = 0
    rebooked: int = 0


@dataclass(frozen=True)
class Responses:
    """What patients answered in one week, both arms together (only messaged patients reply)."""

    label: str
    replies: int = 0
    objections: int = 0
    opt_outs: int = 0
    intents: Mapping[str, int] = field(default_factory=dict)
    barriers: Mapping[str, int] = field(default_factory=dict)

    def main_barrier(self) -> str | None:
        named = [(n, b) for b, n in self.barriers.items() if n]
        return BARRIER_WORDS.get(max(named)[1], max(named)[1]) if named else None


@dataclass(frozen=True)
class Example:
    at: str
    words: str  # the (synthetic) patient's reply, or "" when the words were not fetched


@dataclass(frozen=True)
class Objection:
    """One barrier (or, when the reply named none, one objecting intent) and its replies."""

    what: str
    replies: int
    examples: tuple[Example, ...] = ()


@dataclass(frozen=True)
class PilotFigures:
    arms: Mapping[str, ArmFigures]
    differences: Mapping[str, Difference]
    weeks: Sequence[WeekCounts]
    responses: Sequence[Responses]
    pilot_week_responses: Mapping[int, Responses] = field(default_factory=dict)
    phases: Mapping[int, str] = field(default_factory=dict)
    window_days: int | None = None
    # The same cohort definition in the weeks before the launch: observational.
    previous: ArmFigures | None = None
    previous_differences: Mapping[str, Difference] = field(default_factory=dict)
    causal_why: str = ""
    cohort_words: str = ""
    objections: Sequence[Objection] = ()

    def arm(self, name: str) -> ArmFigures:
        return self.arms.get(name) or ArmFigures(name)

    def week_numbers(self) -> list[int]:
        return list(range(1, max((w.week for w in self.weeks), default=0) + 1))

    def per_week(self, arm: str, figure: str) -> list[int]:
        """``figure`` (assigned, messaged, rebooked) of ``arm`` for every week, 0 when quiet."""
        counts = dict.fromkeys(self.week_numbers(), 0)
        for w in self.weeks:
            if w.arm == arm:
                counts[w.week] += getattr(w, figure)
        return list(counts.values())


def read_pilot_figures(
    pilot: Mapping[str, Any],
    barriers: Mapping[str, Any] | None = None,
    objections: Sequence[Mapping[str, Any]] | None = None,
) -> PilotFigures:
    """``objections``: the week-3 review's (examples with ``words``); else the report's own."""
    weeks = list(pilot.get("weeks") or [])
    by_pilot_week = _responses(weeks, lambda row: f"week {row['week']}")
    if barriers is not None:
        responses = _responses(barriers.get("rows") or [], _calendar_week)
    else:
        responses = by_pilot_week
    return PilotFigures(
        arms={arm: _arm(arm, (pilot.get("arms") or {}).get(arm)) for arm in ARMS},
        differences={c["figure"]: _difference(c) for c in pilot.get("comparison") or []},
        weeks=[
            WeekCounts(
                int(w["week"]),
                str(w["arm"]),
                _int(w, "assigned"),
                _int(w, "messaged"),
                _int(w, "rebooked"),
            )
            for w in weeks
        ],
        responses=responses,
        # _responses sorts by week, so the numbers and the sums line up.
        pilot_week_responses=dict(
            zip(sorted({int(w["week"]) for w in weeks}), by_pilot_week, strict=True)
        ),
        phases={int(w["week"]): str(w.get("phase") or "") for w in weeks},
        window_days=pilot.get("attribution_window_days"),
        previous=_previous(pilot),
        previous_differences={
            c["figure"]: _difference(c, "previous")
            for c in (pilot.get("previous_process") or {}).get("comparison") or []
        },
        causal_why=str((pilot.get("causal_claim") or {}).get("why") or ""),
        cohort_words=str(pilot.get("cohort_words") or ""),
        objections=[_objection(o) for o in (objections or pilot.get("objections") or [])],
    )


def _previous(pilot: Mapping[str, Any]) -> ArmFigures | None:
    cohort = (pilot.get("previous_process") or {}).get("cohort")
    return _arm("previous", cohort) if cohort else None


def _objection(o: Mapping[str, Any]) -> Objection:
    barrier, intent = str(o.get("barrier") or ""), str(o.get("intent") or "")
    what = BARRIER_WORDS.get(barrier, barrier) if barrier else INTENT_WORDS.get(intent, intent)
    examples = tuple(
        Example(str(e.get("at") or ""), str(e.get("words") or "")) for e in o.get("examples") or []
    )
    return Objection(str(what), int(o.get("replies") or 0), examples)


def _int(row: Mapping[str, Any], key: str) -> int:
    return int(row.get(key) or 0)


def _arm(name: str, row: Mapping[str, Any] | None) -> ArmFigures:
    if not row:
        return ArmFigures(name)
    return ArmFigures(
        name,
        assigned=_int(row, "assigned"),
        messaged=_int(row, "messaged"),
        clicked=_int(row, "clicked"),
        replied=_int(row, "replied"),
        opted_out=_int(row, "opted_out"),
        rebooked=_int(row, "rebooked"),
        completed=_int(row, "completed"),
        revenue_cents=_int(row, "revenue_cents"),
    )


def _difference(c: Mapping[str, Any], other: str = "holdout") -> Difference:
    return Difference(
        figure=str(c["figure"]),
        outreach=(c.get("outreach") or {}).get("rate"),
        holdout=(c.get(other) or {}).get("rate"),
        estimate=c.get("difference"),
        low=c.get("ci_low"),
        high=c.get("ci_high"),
    )


def _calendar_week(row: Mapping[str, Any]) -> str:
    # /reports/barriers weeks are ISO weeks named by their Monday; grouped otherwise, no week.
    if not row.get("week"):
        return "all weeks"
    monday = date.fromisoformat(str(row["week"])[:10])
    return f"week of {monday:%b} {monday.day}"


def _responses(
    rows: Iterable[Mapping[str, Any]], label: Callable[[Mapping[str, Any]], str]
) -> list[Responses]:
    """Rows summed by week label, whatever other dimensions (clinic, arm) split them."""
    summed: dict[str, dict[str, int]] = {}
    for row in sorted(rows, key=lambda r: (str(r.get("week") or "")).zfill(10)):
        totals = summed.setdefault(label(row), {})
        for key, value in row.items():
            if isinstance(value, int | float) and key not in ("week",):
                totals[key] = totals.get(key, 0) + int(value)
    return [
        Responses(
            label=name,
            replies=t.get("replies", 0),
            objections=t.get("objections", 0),
            opt_outs=t.get("opt_outs", 0),
            intents=_prefixed(t, "intent_"),
            barriers=_prefixed(t, "barrier_"),
        )
        for name, t in summed.items()
    ]


def _prefixed(totals: Mapping[str, int], prefix: str) -> dict[str, int]:
    return {k.removeprefix(prefix): v for k, v in totals.items() if k.startswith(prefix)}


# --- words and numbers as the report says them -------------------------------------------------


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def points(value: float) -> str:
    """A difference of two rates in whole percentage points, with a true minus sign."""
    rounded = round(value * 100)
    return f"\u2212{-rounded}" if rounded < 0 else str(rounded)


def dollars(cents: int | float) -> str:
    # The synthetic practice is American and metrics assume one currency per clinic.
    return f"${cents / 100:,.0f}"


def total(responses: Sequence[Responses]) -> Responses:
    """Every week's responses added up."""
    intents: dict[str, int] = {}
    barriers: dict[str, int] = {}
    for r in responses:
        for k, v in r.intents.items():
            intents[k] = intents.get(k, 0) + v
        for k, v in r.barriers.items():
            barriers[k] = barriers.get(k, 0) + v
    return Responses(
        "all weeks",
        sum(r.replies for r in responses),
        sum(r.objections for r in responses),
        sum(r.opt_outs for r in responses),
        intents,
        barriers,
    )
