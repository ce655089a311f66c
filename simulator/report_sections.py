"""The pilot report's playbook sections: who the cohort took, the four weeks with their
checklists and decisions, the week-3 objections with example replies, and the comparison with
the previous weeks. Pure functions of the figures and the sequencer's review; ``report.py``
puts them on the page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.pilots import PHASE_WORDS, phase_of
from simulator.pilot_figures import (
    ARM_LABELS,
    PREVIOUS_LABEL,
    Difference,
    PilotFigures,
    Responses,
    percent,
    points,
)

PHASE_COLUMNS = ("Week", "What the week is for", "Checklist confirmed", "Team's decision")
PREVIOUS_COLUMNS = ("", ARM_LABELS["outreach"], PREVIOUS_LABEL, "Difference (95% CI)")


def cohort_lines(review: Mapping[str, Any]) -> list[str]:
    """Who the cohort takes, and what the pilot did with the eligibilities it screened."""
    words = str(review.get("cohort_words") or "")
    screened = review.get("screened") or {}
    out = [f"Cohort: {words}." if words else "Cohort: the whole segment."]
    if screened:
        of_segment = sum(screened.get(v, 0) for v in ("enrolled", "held", "out"))
        out.append(
            f"Screened {of_segment:,} eligibilities of the segment: "
            f"{screened.get('enrolled', 0):,} enrolled in the launch group, "
            f"{screened.get('held', 0):,} held (week 1, or the launch group full: nobody messaged "
            f"them), {screened.get('out', 0):,} not in the cohort."
        )
        if screened.get("exclusive"):
            out.append(
                f"{screened['exclusive']:,} needs of other segments or outside the cohort were "
                "held too: the pilot was exclusive, so nobody outside it was messaged."
            )
    return out


def phase_rows(review: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    for week in review.get("phases") or []:
        confirmed = [c["item"].replace("_", " ") for c in week["checklist"] if c["confirmed"]]
        total = len(week["checklist"])
        ticked = (
            f"{len(confirmed)} of {total}: {', '.join(confirmed)}"
            if confirmed
            else (f"0 of {total}" if total else "no checklist")
        )
        decisions = "; ".join(
            d["decision"] + (f": {d['note']}" if d.get("note") else "") for d in week["decisions"]
        )
        rows.append((str(week["week"]), week["what"], ticked, decisions or "not recorded"))
    return rows


def _diff(d: Difference | None) -> str:
    if d is None or d.estimate is None or d.low is None or d.high is None:
        return "no interval: a group is empty"
    return f"{points(d.estimate)} points ({points(d.low)} to {points(d.high)})"


def previous_rows(figures: PilotFigures) -> list[tuple[str, str, str, str]]:
    """The outreach arm against the previous weeks, each rate with the 95% interval."""
    pilot, before = figures.arm("outreach"), figures.previous
    if before is None:
        return []

    def share(n: int, of: int) -> str:
        return f"{n:,} ({percent(n / of)})" if of else f"{n:,}"

    return [
        ("Patients", f"{pilot.assigned:,}", f"{before.assigned:,}", ""),
        ("Messaged", share(pilot.messaged, pilot.assigned),
         share(before.messaged, before.assigned), ""),
        ("Rebooked", share(pilot.rebooked, pilot.assigned),
         share(before.rebooked, before.assigned),
         _diff(figures.previous_differences.get("rebooked_rate"))),
        ("Completed a visit", share(pilot.completed, pilot.assigned),
         share(before.completed, before.assigned),
         _diff(figures.previous_differences.get("completed_rate"))),
    ]  # fmt: skip


def previous_lines(figures: PilotFigures) -> list[str]:
    if figures.previous is None:
        return ["The pilot's plan has not reached metrics yet: no comparison with the weeks "
                "before it."]  # fmt: skip
    out = [
        "The same cohort definition applied to the weeks before the launch, each patient "
        f"counted from becoming eligible over the same {figures.window_days or 30} days. "
        "Observational: those weeks may differ in more than the messages."
    ]
    if figures.previous.messaged:
        out.append(
            f"{figures.previous.messaged} of those patients were messaged by Revisit outside "
            "the pilot, so the previous weeks are not purely the usual process."
        )
    d = figures.previous_differences.get("rebooked_rate")
    vs_holdout = figures.differences.get("rebooked_rate")
    if d is not None and vs_holdout is not None and d.shown != vs_holdout.shown:
        out.append(
            "The two comparisons disagree on rebooking; trust the holdout, which was chosen at "
            "random at the same time."
        )
    if figures.causal_why:
        out.append(figures.causal_why)
    return out


def objection_items(figures: PilotFigures) -> list[tuple[str, list[str]]]:
    """(barrier and count, example replies' words) for the week-3 review."""
    return [
        (
            f"{o.what}: {o.replies} {'reply' if o.replies == 1 else 'replies'}",
            [e.words for e in o.examples if e.words],
        )
        for o in figures.objections
    ]


REVIEW_COLUMNS = (
    "Week", "What the week is for", "Enrolled (messaged / usual)", "Messaged",
    "Rebooked (messaged / usual)", "Booking requests", "Replies", "Objections", "Main barrier",
    "Opt-outs", "Team's decision",
)  # fmt: skip


def weekly_review(figures: PilotFigures, review: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """One row per pilot week: the metrics figures, the sequencer's counts, the team's call."""
    operational = {int(w["week"]): w for w in review.get("weeks") or []}
    decisions: dict[int, list[str]] = {}
    for r in review.get("reviews") or []:
        note = f": {r['note']}" if r.get("note") else ""
        decisions.setdefault(int(r["week"]), []).append(f"{r['decision']}{note}")
    rows: list[tuple[str, ...]] = []
    for week in sorted(set(figures.week_numbers()) | set(operational) | set(decisions)):
        said = figures.pilot_week_responses.get(week) or Responses(f"week {week}")

        def count(arm: str, figure: str, week: int = week) -> int:
            return sum(getattr(w, figure) for w in figures.weeks if (w.week, w.arm) == (week, arm))

        requests = (operational.get(week, {}).get("outreach") or {}).get("booking_requested", 0)
        rows.append(
            (
                str(week),
                figures.phases.get(week) or PHASE_WORDS[phase_of(week)],
                f"{count('outreach', 'assigned')} / {count('holdout', 'assigned')}",
                str(count("outreach", "messaged")),
                f"{count('outreach', 'rebooked')} / {count('holdout', 'rebooked')}",
                str(requests),
                str(said.replies),
                str(said.objections),
                said.main_barrier() or "none named",
                str(said.opt_outs),
                "; ".join(decisions.get(week, [])) or "not recorded",
            )
        )
    return rows
