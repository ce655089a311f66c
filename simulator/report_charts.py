"""The pilot report's PNG charts (plots, not patient charts), drawn from a pilot's figures.

matplotlib's object API (``Figure`` saved through the Agg canvas), never pyplot: pyplot keeps a
global registry of open figures and picks a display backend, neither of which a report written
from a command line, a worker thread or a test wants. Each chart has a fixed pixel size (no
tight bounding box) so the report's ``<img width height>`` match the file.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from simulator.pilot_figures import (
    ARM_LABELS,
    ARMS,
    BARRIER_WORDS,
    COMPARED,
    INTENT_WORDS,
    PREVIOUS_LABEL,
    ArmFigures,
    Difference,
    PilotFigures,
    dollars,
    percent,
    points,
    total,
)

ARM_COLOURS = {"outreach": "#1b7f79", "holdout": "#9aa5b1"}
PALETTE = ("#1b7f79", "#e39b2d", "#5b6ee1", "#c4455a", "#7a9e3a", "#8a5fb0", "#3c9fd6", "#b07c52")
DPI = 100
SIZE = (10.0, 4.0)  # inches: 1000 x 400 pixels


@dataclass(frozen=True)
class ReportImage:
    file: str
    title: str
    alt: str
    width: int
    height: int


def draw_charts(figures: PilotFigures, out_dir: Path) -> list[ReportImage]:
    """Every chart the figures support, saved as PNG files in ``out_dir``."""
    planned: list[tuple[str, str, Callable[[PilotFigures], str], Callable[..., None]]] = [
        ("rates.png", "Rebooked and completed, by arm", _rates_alt, _draw_rates),
        ("weeks.png", "Week by week", _weeks_alt, _draw_weeks),
        ("responses.png", "Responses and objections by week", _responses_alt, _draw_responses),
    ]
    if any(figures.arm(a).revenue_cents for a in ARMS):
        planned.append(("revenue.png", "Revenue recovered, by arm", _revenue_alt, _draw_revenue))
    charts = []
    for file, title, alt, draw in planned:
        fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
        draw(fig, figures)
        fig.savefig(out_dir / file, format="png", dpi=DPI)
        charts.append(
            ReportImage(file, title, alt(figures), round(SIZE[0] * DPI), round(SIZE[1] * DPI))
        )
    return charts


# --- (a) rates by arm and the difference with its interval ------------------------------------


def _rates_alt(f: PilotFigures) -> str:
    parts = [
        f"{COMPARED.get(d.figure, d.figure)}: {percent(d.outreach)} messaged vs "
        f"{percent(d.holdout)} usual process"
        for d in f.differences.values()
    ]
    parts += [
        f"{COMPARED.get(d.figure, d.figure)}: {percent(d.holdout)} in the previous weeks"
        for d in f.previous_differences.values()
    ]
    return "Bar chart of rates by arm; " + ("; ".join(parts) or "no comparison yet")


def _groups(f: PilotFigures) -> list[tuple[str, ArmFigures, str, str | None]]:
    """(label, figures, colour, hatch): both arms, and the previous weeks when known."""
    groups: list[tuple[str, ArmFigures, str, str | None]] = [
        (ARM_LABELS[a], f.arm(a), ARM_COLOURS[a], None) for a in ARMS
    ]
    if f.previous is not None:
        groups.append((PREVIOUS_LABEL, f.previous, "#d1d5db", "//"))
    return groups


def _draw_rates(fig: Figure, f: PilotFigures) -> None:
    bars, diff = fig.subplots(1, 2, width_ratios=(3, 2))
    names = ("rebooked", "completed")
    groups = _groups(f)
    width = 0.76 / len(groups)
    for i, (label, figures, colour, hatch) in enumerate(groups):
        values = [figures.share(getattr(figures, n)) or 0.0 for n in names]
        xs = [k + (i - (len(groups) - 1) / 2) * width for k in range(len(names))]
        drawn = bars.bar(
            xs,
            [v * 100 for v in values],
            width * 0.95,
            color=colour,
            hatch=hatch,
            edgecolor="#6b7280" if hatch else None,
            label=f"{label}, n={figures.assigned}",
        )
        bars.bar_label(drawn, labels=[percent(v) for v in values], padding=2, fontsize=8)
    bars.set_xticks(range(len(names)), ["Rebooked", "Completed visit"])
    bars.set_ylabel("% of patients in the group")
    bars.set_ylim(0, 105)
    bars.legend(loc="upper right", fontsize=7, frameon=False)
    bars.set_title("Share of each group", fontsize=10)

    rows: list[tuple[str, Difference, bool]] = [
        (f"{COMPARED.get(d.figure, d.figure)}\nvs control", d, True)
        for d in f.differences.values()
        if d.estimate is not None
    ]
    rows += [
        (f"{COMPARED.get(d.figure, d.figure)}\nvs previous weeks", d, False)
        for d in f.previous_differences.values()
        if d.estimate is not None
    ]
    for y, (_, d, causal) in enumerate(rows):
        assert d.estimate is not None and d.low is not None and d.high is not None
        est, low, high = d.estimate * 100, d.low * 100, d.high * 100
        colour = ARM_COLOURS["outreach"] if d.shown and causal else "#6b7280"
        err = [[est - low], [high - est]]
        marker = "o" if causal else "s"
        diff.errorbar([est], [y], xerr=err, fmt=marker, color=colour, capsize=5, linewidth=2)
        words = f"{points(d.estimate)} points ({points(d.low)} to {points(d.high)})"
        words += "" if d.shown else ": no clear difference"
        diff.annotate(
            words, (est, y), xytext=(0, 9), textcoords="offset points", ha="center", fontsize=8
        )
    diff.axvline(0, color="#374151", linewidth=1, linestyle="--")
    diff.set_yticks(range(len(rows)), [label for label, _, _ in rows], fontsize=8)
    diff.set_ylim(max(len(rows), 1) - 0.3, -0.7)  # the first figure (rebooked) on top
    diff.margins(x=0.15)  # room for the labels at the interval's ends, and 0 always in view
    diff.set_xlabel("points, 95% interval (squares: observational)")
    diff.set_title("Messaged minus each other group", fontsize=10)
    if not rows:
        diff.text(0.5, 0.5, "not enough patients to compare", ha="center", transform=diff.transAxes)


# --- (b) week by week, cumulative --------------------------------------------------------------


def _weeks_alt(f: PilotFigures) -> str:
    parts = [
        f"{ARM_LABELS[a]}: {sum(f.per_week(a, 'rebooked'))} bookings from "
        f"{f.arm(a).assigned} patients"
        for a in ARMS
    ]
    return f"Cumulative bookings over {len(f.week_numbers())} weeks; " + "; ".join(parts)


def _draw_weeks(fig: Figure, f: PilotFigures) -> None:
    booked, enrolled = fig.subplots(1, 2, width_ratios=(3, 2))
    weeks = f.week_numbers()
    for arm in ARMS:
        figures = f.arm(arm)
        if not figures.assigned:
            continue
        colour, label = ARM_COLOURS[arm], ARM_LABELS[arm]
        running = [100 * n / figures.assigned for n in accumulate(f.per_week(arm, "rebooked"))]
        booked.plot(weeks, running, marker="o", color=colour, label=label)
        # Metrics does not date completions week by week: the whole pilot's share is a marker.
        done = figures.share(figures.completed)
        if weeks and done is not None:
            booked.plot([weeks[-1]], [done * 100], "D", color=colour, markeredgecolor="#111827")
        enrolled.plot(weeks, list(accumulate(f.per_week(arm, "assigned"))), "o-", color=colour)
    booked.plot([], [], "D", color="white", markeredgecolor="#111827", label="completed visit")
    booked.set_title("Rebooked so far (% of the arm)", fontsize=10)
    booked.set_ylim(bottom=0)
    booked.legend(loc="upper left", fontsize=8, frameon=False)
    enrolled.set_title("Patients enrolled so far", fontsize=10)
    for ax in (booked, enrolled):
        ax.set_xlabel("pilot week")
        ax.set_xticks(weeks or [1])
        ax.grid(axis="y", alpha=0.3)


# --- (c) responses and objections by week ------------------------------------------------------


def _responses_alt(f: PilotFigures) -> str:
    t = total(f.responses)
    return (
        f"Stacked bars of replies by what patients said and barriers they named, per week: "
        f"{t.replies} replies, {t.objections} objections, {t.opt_outs} opt-outs"
    )


def _stack(
    ax: Axes, labels: list[str], rows: Sequence[Mapping[str, int]], words: dict[str, str]
) -> int:
    """Stacked bars, one colour per kind; returns the tallest stack."""
    bottoms = [0] * len(labels)
    for colour, key in zip(PALETTE * 2, words, strict=False):
        heights = [row.get(key, 0) for row in rows]
        if any(heights):
            ax.bar(labels, heights, bottom=bottoms, color=colour, label=words[key])
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    return max(bottoms, default=0)


def _draw_responses(fig: Figure, f: PilotFigures) -> None:
    replies, barriers = fig.subplots(1, 2)
    labels = [r.label for r in f.responses]
    tallest = _stack(replies, labels, [r.intents for r in f.responses], INTENT_WORDS)
    tallest = max(tallest, *(r.opt_outs for r in f.responses), 0)
    if any(r.opt_outs for r in f.responses):
        opt_outs = [r.opt_outs or math.nan for r in f.responses]  # no marker for a quiet week
        replies.plot(labels, opt_outs, "s", color="#111827", label="opted out")
    replies.set_title("Replies by what the patient said, and opt-outs", fontsize=10)
    named = _stack(barriers, labels, [r.barriers for r in f.responses], BARRIER_WORDS)
    barriers.set_title("Barriers patients named", fontsize=10)
    for ax, top in ((replies, tallest), (barriers, named)):
        ax.set_ylabel("replies")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(axis="x", labelsize=8)
        # Set, not margins(): a zero-height segment's bottom is a sticky edge margins stop at.
        ax.set_ylim(0, max(top, 1) * 1.4)  # headroom for the legend above the tallest bar
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, frameon=False, loc="upper left")
        else:
            ax.text(0.5, 0.5, "none recorded", ha="center", transform=ax.transAxes)


# --- (d) revenue recovered ---------------------------------------------------------------------


def _revenue_alt(f: PilotFigures) -> str:
    parts = [f"{ARM_LABELS[a]}: {dollars(f.arm(a).revenue_cents)}" for a in ARMS]
    return "Bar chart of revenue recovered; " + "; ".join(parts)


def _draw_revenue(fig: Figure, f: PilotFigures) -> None:
    whole, each = fig.subplots(1, 2)
    labels = [ARM_LABELS[a] for a in ARMS]
    colours = [ARM_COLOURS[a] for a in ARMS]
    cents = [f.arm(a).revenue_cents for a in ARMS]
    per_patient = [c / (f.arm(a).assigned or 1) for c, a in zip(cents, ARMS, strict=True)]
    drawn = whole.bar(labels, [c / 100 for c in cents], color=colours)
    whole.bar_label(drawn, labels=[dollars(c) for c in cents], padding=2, fontsize=9)
    whole.set_title("Revenue recovered (charges of completed visits)", fontsize=10)
    drawn = each.bar(labels, [c / 100 for c in per_patient], color=colours)
    each.bar_label(drawn, labels=[dollars(c) for c in per_patient], padding=2, fontsize=9)
    each.set_title("Per patient enrolled (the arms differ in size)", fontsize=10)
    for ax in (whole, each):
        ax.set_ylabel("US dollars")
        ax.margins(y=0.15)
