"""Week 4's report as staff read it: rebooking and completion for the pilot's messaged arm, its
holdout and the previous weeks; the differences with their 95% intervals (the metrics
service's, never recomputed here); the weeks; and the charts of those figures.

Only the holdout comparison supports a causal claim, and a headline never claims a difference
the holdout's interval does not show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.console.domain.charts import Chart, Group, Row, bar_chart, count_ticks, nice_top

GROUPS = (
    ("outreach", "Messaged (the pilot)", "pilot"),
    ("holdout", "Holdout (usual process)", "holdout"),
    ("previous", "Previous weeks (observational)", "previous"),
)
GROUP_LABEL = {key: label for key, label, _ in GROUPS}
COMPARED = {"rebooked_rate": "Rebooked", "completed_rate": "Completed a visit"}
COUNT_OF = {"rebooked_rate": "rebooked", "completed_rate": "completed"}
AGAINST = {"holdout": "against the holdout", "previous": "against the previous weeks"}


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.0%}"


MINUS = "\u2212"  # read as "minus", where a hyphen is read as a dash


def points(value: float) -> str:
    return f"{value * 100:+.1f} points".replace("-", MINUS)


def dollars(cents: Any) -> str:
    return f"${int(cents or 0) / 100:,.0f}"


@dataclass(frozen=True)
class GroupFigures:
    key: str
    label: str
    assigned: int
    messaged: int
    replied: int
    rebooked: int
    completed: int
    revenue: str
    rates: dict[str, float | None]  # compared figure -> rate (None: nobody in the group)

    def shown(self, figure: str) -> str:
        count = self.rebooked if figure == "rebooked_rate" else self.completed
        return f"{percent(self.rates[figure])} ({count} of {self.assigned})"


@dataclass(frozen=True)
class Difference:
    against: str  # holdout | previous
    figure: str
    estimate: float | None
    low: float | None
    high: float | None

    @property
    def label(self) -> str:
        return f"{COMPARED.get(self.figure, self.figure)} {AGAINST[self.against]}"

    @property
    def shown(self) -> bool:
        """The interval leaves out no difference: the data show one."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    @property
    def words(self) -> str:
        if self.estimate is None or self.low is None or self.high is None:
            return "not enough patients in both groups to compare"
        return f"{points(self.estimate)} (95% interval {points(self.low)} to {points(self.high)})"


@dataclass(frozen=True)
class WeekRow:
    week: int
    phase: str
    arm: str
    figures: dict[str, int]


WEEK_FIGURES = (
    ("assigned", "Assigned"),
    ("messaged", "First message"),
    ("replies", "Replies"),
    ("objections", "Objections"),
    ("rebooked", "Rebooked"),
    ("opt_outs", "Opt-outs"),
)


@dataclass(frozen=True)
class PilotReport:
    groups: tuple[GroupFigures, ...]
    differences: tuple[Difference, ...]
    headline: str
    causal: str
    previous_label: str
    previous: dict[str, Any] | None  # the previous weeks' span and what was left out
    weeks: tuple[WeekRow, ...]
    charts: tuple[Chart, ...]


def _int(row: Mapping[str, Any] | None, key: str) -> int:
    return int((row or {}).get(key) or 0)


def _group(key: str, row: Mapping[str, Any] | None) -> GroupFigures:
    assigned = _int(row, "assigned")
    return GroupFigures(
        key=key,
        label=GROUP_LABEL[key],
        assigned=assigned,
        messaged=_int(row, "messaged"),
        replied=_int(row, "replied"),
        rebooked=_int(row, "rebooked"),
        completed=_int(row, "completed"),
        revenue=dollars((row or {}).get("revenue_cents")),
        rates={f: (_int(row, COUNT_OF[f]) / assigned if assigned else None) for f in COMPARED},
    )


def _differences(rows: Sequence[Mapping[str, Any]], against: str) -> list[Difference]:
    return [
        Difference(
            against,
            str(c.get("figure")),
            c.get("difference"),
            c.get("ci_low"),
            c.get("ci_high"),
        )
        for c in rows
        if c.get("figure") in COMPARED
    ]


def headline(differences: Sequence[Difference]) -> str:
    """What the holdout comparison shows for rebooking; nothing it does not."""
    found = next(
        (d for d in differences if d.against == "holdout" and d.figure == "rebooked_rate"), None
    )
    if found is None or found.estimate is None:
        return "Not enough patients in both arms to compare rebooking with the holdout yet."
    if found.shown:
        more = "more" if (found.estimate or 0) > 0 else "fewer"
        return (
            f"The pilot's patients rebooked {more} than the holdout: {found.words}. This "
            "comparison supports a causal claim."
        )
    return (
        f"No difference in rebooking is shown against the holdout yet: {found.words}; the "
        "interval includes no difference."
    )


def read_report(report: Mapping[str, Any]) -> PilotReport:
    arms = report.get("arms") or {}
    previous = report.get("previous_process") or {}
    cohort = previous.get("cohort")
    groups = [_group("outreach", arms.get("outreach")), _group("holdout", arms.get("holdout"))]
    if cohort is not None:
        groups.append(_group("previous", cohort))
    differences = _differences(report.get("comparison") or [], "holdout")
    differences += _differences(previous.get("comparison") or [], "previous")
    weeks = tuple(
        WeekRow(
            int(w.get("week") or 0),
            str(w.get("phase") or ""),
            GROUP_LABEL.get(str(w.get("arm")), str(w.get("arm"))),
            {key: _int(w, key) for key, _ in WEEK_FIGURES},
        )
        for w in report.get("weeks") or []
    )
    return PilotReport(
        groups=tuple(groups),
        differences=tuple(differences),
        headline=headline(differences),
        causal=str((report.get("causal_claim") or {}).get("why") or ""),
        previous_label=str(previous.get("label") or ""),
        previous=dict(cohort) if cohort is not None else None,
        weeks=weeks,
        charts=(rates_chart(groups), differences_chart(differences), weeks_chart(weeks)),
    )


def rates_chart(groups: Sequence[GroupFigures]) -> Chart:
    rates = [r for g in groups for r in g.rates.values() if r is not None]
    top = nice_top(max(rates, default=0.0), 0.1)
    chart_groups = [
        Group(
            COMPARED[figure],
            tuple(Row(g.label, g.rates[figure], g.shown(figure), f"bar-{g.key}") for g in groups),
        )
        for figure in COMPARED
    ]
    summary = "; ".join(
        f"{COMPARED[f]}: " + ", ".join(f"{g.label} {g.shown(f)}" for g in groups) for f in COMPARED
    )
    ticks = [(0.0, "0%"), (top / 2, percent(top / 2)), (top, percent(top))]
    return bar_chart(
        "pilot-rates", "Rebooked and completed, by group", summary, chart_groups, (0, top), ticks
    )


def differences_chart(differences: Sequence[Difference]) -> Chart:
    ends = [abs(v) for d in differences for v in (d.estimate, d.low, d.high) if v is not None]
    reach = nice_top(max(ends, default=0.0), 0.1)
    chart_groups = []
    for against in AGAINST:
        rows = tuple(
            Row(
                COMPARED.get(d.figure, d.figure),
                d.estimate,
                points(d.estimate) if d.estimate is not None else "no comparison yet",
                "bar-difference" if d.shown else "bar-unclear",
                d.low,
                d.high,
            )
            for d in differences
            if d.against == against
        )
        if rows:
            chart_groups.append(Group(f"The pilot {AGAINST[against]}", rows))
    summary = "; ".join(f"{d.label}: {d.words}" for d in differences) or "No comparison yet."
    ticks = [(-reach, points(-reach)), (0.0, "no difference"), (reach, points(reach))]
    return bar_chart(
        "pilot-differences",
        "Differences with their 95% intervals (percentage points)",
        summary,
        chart_groups,
        (-reach, reach),
        ticks,
    )


def weeks_chart(weeks: Sequence[WeekRow]) -> Chart:
    shown = ("assigned", "rebooked")
    top = nice_top(max((w.figures[k] for w in weeks for k in shown), default=0), 5)
    chart_groups = [
        Group(
            f"Week {w.week}, {w.arm}",
            tuple(
                Row(label, w.figures[key], str(w.figures[key]), f"bar-{key}")
                for key, label in WEEK_FIGURES
                if key in shown
            ),
        )
        for w in weeks
    ]
    summary = (
        "; ".join(
            f"week {w.week}, {w.arm}: {w.figures['assigned']} assigned, "
            f"{w.figures['rebooked']} rebooked"
            for w in weeks
        )
        or "No week has figures yet."
    )
    return bar_chart(
        "pilot-weeks",
        "Assigned and rebooked, week by week",
        summary,
        chart_groups,
        (0, top),
        count_ticks(top),
    )
