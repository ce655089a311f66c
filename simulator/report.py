"""The pilot report: one self-contained HTML page with PNG charts, written to a folder.

``write_pilot_report`` is the only function that touches the disk; the headline, the tables and
the page are pure functions of the metrics and sequencer answers, so tests can hold the words to
the numbers. The page carries counts per arm and week and, for the week-3 review, a few example
replies (synthetic patients' words, never with a key or name); it needs no network: no external
CSS, scripts or fonts. Every string that reaches the page is escaped. Beside it, ``pilot.json``
keeps what the rehearsal read from the services (patients as opaque keys only).
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from simulator.pilot_figures import (
    ARM_LABELS,
    BARRIER_WORDS,
    INTENT_WORDS,
    SEGMENT_WORDS,
    Difference,
    PilotFigures,
    dollars,
    percent,
    points,
    read_pilot_figures,
    total,
)
from simulator.report_charts import ReportImage, draw_charts
from simulator.report_sections import (
    PHASE_COLUMNS,
    PREVIOUS_COLUMNS,
    REVIEW_COLUMNS,
    cohort_lines,
    objection_items,
    phase_rows,
    previous_lines,
    previous_rows,
    weekly_review,
)


@dataclass(frozen=True)
class PilotRun:
    """How the rehearsal was set up: what the report's "how this was run" section says."""

    segment: str
    patients: int  # the cohort asked for
    holdout_share: float
    days: int
    seed: int
    clinic_name: str  # the simulated practice
    simulated_start: date
    simulated_end: date
    generated_at: datetime
    exclusive: bool = True  # the practice messaged nobody outside the pilot's launch group


def _verdict(d: Difference) -> str:
    assert d.estimate is not None and d.low is not None and d.high is not None
    interval = f"95% CI {points(d.low)} to {points(d.high)}"
    if not d.shown:
        # The interval spans 0: the arms cannot be told apart, whatever the point estimate.
        return f"no clear difference ({points(d.estimate)} points, {interval})"
    if d.estimate < 0:
        return f"difference {points(d.estimate)} points ({interval}): fewer with messages"
    return f"difference {points(d.estimate)} points ({interval})"


def headline(run: PilotRun, figures: PilotFigures) -> str:
    """One sentence on rebooking, messaged versus the usual process, as the interval allows."""
    who = SEGMENT_WORDS.get(run.segment, "patients in " + run.segment.replace("_", " "))
    d = figures.differences.get("rebooked_rate")
    messaged, usual = figures.arm("outreach"), figures.arm("holdout")
    if d is None or d.estimate is None or not messaged.assigned or not usual.assigned:
        return (
            f"Not enough patients in both arms to compare yet: {messaged.assigned} enrolled to be "
            f"messaged, {usual.assigned} left to the usual process."
        )
    return (
        f"Messaging {who} rebooked {percent(d.outreach)} of them vs {percent(d.holdout)} "
        f"without; {_verdict(d)}."
    )


def findings(figures: PilotFigures) -> list[str]:
    """The sentences under the headline: completed visits, revenue, what patients said."""
    out = []
    d = figures.differences.get("completed_rate")
    if d is not None and d.estimate is not None:
        out.append(
            f"Completed visits: {percent(d.outreach)} of patients messaged vs "
            f"{percent(d.holdout)} without; {_verdict(d)}."
        )
    messaged, usual = figures.arm("outreach"), figures.arm("holdout")
    if messaged.revenue_cents or usual.revenue_cents:
        out.append(
            f"Revenue recovered: {dollars(messaged.revenue_cents)} from {messaged.assigned} "
            f"patients messaged ({_each(messaged.revenue_cents, messaged.assigned)} each) vs "
            f"{dollars(usual.revenue_cents)} from {usual.assigned} "
            f"({_each(usual.revenue_cents, usual.assigned)} each)."
        )
    said = total(figures.responses)
    if said.replies or said.opt_outs:
        barrier = said.main_barrier()
        named = f"; the barrier named most was {barrier}" if barrier else ""
        out.append(
            f"Patients sent {said.replies} replies, {said.objections} of them objections"
            f"{named}; {said.opt_outs} opted out."
        )
    return out


def _each(cents: int, patients: int) -> str:
    return dollars(cents / patients) if patients else "n/a"


def _count(n: int, of: int) -> str:
    return f"{n:,} ({percent(n / of)})" if of else f"{n:,}"


def arm_table(figures: PilotFigures) -> list[tuple[str, str, str, str]]:
    """(figure, messaged arm, usual process, difference) rows; shares are of the enrolled."""
    o, h = figures.arm("outreach"), figures.arm("holdout")

    def diff(name: str) -> str:
        d = figures.differences.get(name)
        if d is None or d.estimate is None or d.low is None or d.high is None:
            return ""
        return f"{points(d.estimate)} points ({points(d.low)} to {points(d.high)})"

    def counts(label: str, figure: str, compared: str = "") -> tuple[str, str, str, str]:
        mine, theirs = getattr(o, figure), getattr(h, figure)
        return (label, _count(mine, o.assigned), _count(theirs, h.assigned), diff(compared))

    return [
        ("Patients enrolled", f"{o.assigned:,}", f"{h.assigned:,}", ""),
        counts("Messaged", "messaged"),
        counts("Opened the booking link", "clicked"),
        counts("Replied", "replied"),
        counts("Opted out", "opted_out"),
        counts("Rebooked", "rebooked", "rebooked_rate"),
        counts("Completed a visit", "completed", "completed_rate"),
        ("Revenue recovered", dollars(o.revenue_cents), dollars(h.revenue_cents), ""),
        ("Revenue per patient enrolled", _each(o.revenue_cents, o.assigned),
         _each(h.revenue_cents, h.assigned), ""),
    ]  # fmt: skip


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]], cls: str) -> str:
    head = "".join(f"<th scope='col'>{_e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(chart: ReportImage) -> str:
    return (
        f"<figure><img src='{_e(chart.file)}' alt='{_e(chart.alt)}' width='{chart.width}' "
        f"height='{chart.height}'><figcaption>{_e(chart.title)}</figcaption></figure>"
    )


def _said(figures: PilotFigures) -> str:
    t = total(figures.responses)
    items = [(INTENT_WORDS.get(k, k), n) for k, n in t.intents.items() if n]
    items += [(f"barrier: {BARRIER_WORDS.get(k, k)}", n) for k, n in t.barriers.items() if n]
    if not items:
        return "<p>No replies were recorded.</p>"
    return "<ul class='said'>" + "".join(f"<li>{_e(w)}: {n}</li>" for w, n in items) + "</ul>"


def _objections(figures: PilotFigures) -> str:
    items = objection_items(figures)
    if not items:
        return "<p>No objections were recorded.</p>"
    out = []
    for what, examples in items:
        quotes = "".join(f"<blockquote>{_e(words)}</blockquote>" for words in examples)
        out.append(f"<li>{_e(what)}{quotes}</li>")
    return "<ul class='objections'>" + "".join(out) + "</ul>"


STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;
max-width:1040px;margin:2rem auto;padding:0 1rem}h1{font-size:1.5rem}h2{margin-top:2rem;
border-bottom:1px solid #e5e7eb}.headline{font-size:1.25rem;font-weight:600;background:#ecfdf5;
padding:.8rem 1rem;border-left:4px solid #1b7f79}table{border-collapse:collapse;width:100%;
font-size:.9rem}th,td{border:1px solid #e5e7eb;padding:.3rem .5rem;text-align:left;
vertical-align:top}th{background:#f9fafb}.review{font-size:.8rem}figure{margin:1rem 0}
img{max-width:100%;height:auto}figcaption{color:#4b5563;font-size:.85rem}.said{columns:2}
.rehearsal{background:#fffbeb;border:1px solid #f59e0b;padding:.6rem 1rem}
blockquote{margin:.3rem 0 .3rem 1rem;color:#374151;font-style:italic}
"""
# Counts the charts that actually decoded, so a headless browser can prove they rendered.
SCRIPT = (
    "window.addEventListener('load',function(){var n=0;for(var i=0;i<document.images.length;"
    "i++){if(document.images[i].naturalWidth>0){n++;}}document.body.dataset.chartsLoaded="
    "String(n);document.body.dataset.charts=String(document.images.length);});"
)


def how_it_was_run(run: PilotRun, figures: PilotFigures, pilot_id: str) -> list[str]:
    window = f"{figures.window_days} days" if figures.window_days else "the attribution window"
    alone = (
        "The practice used Revisit only for this pilot (an exclusive pilot): nobody outside its "
        "launch group was messaged."
        if run.exclusive
        else "Revisit's other outreach ran beside the pilot."
    )
    return [
        f"A rehearsal on synthetic patients: every patient, visit and reply was generated from "
        f"seed {run.seed} for a simulated practice, {run.clinic_name}. No real patient was "
        "contacted and nothing here describes a real person.",
        f"Segment: {run.segment.replace('_', ' ')}; a launch group of {run.patients} patients, "
        f"{percent(run.holdout_share)} held out for the usual process (the arm comes from a "
        f"hash of the pilot and the patient, so it is fixed and recorded); {run.days} days, "
        f"simulated {run.simulated_start:%Y-%m-%d} to {run.simulated_end:%Y-%m-%d}. Week 1 "
        "defined the pilot: it screened and held its cohort and nobody was messaged; the launch "
        f"opened week 2. {alone}",
        f"Both arms are counted from assignment (intent to treat): rebooked is a booking that "
        f"meets the need by the segmenter's own rule within {window}; completed is that booking "
        "kept. Clicks on the booking link are shown, never counted as a result. The "
        "difference's 95% interval is Newcombe's hybrid score method; an interval that spans 0 "
        "is not a difference the pilot has shown.",
        f"Written {run.generated_at.isoformat(timespec='minutes')} from the metrics service's "
        f"pilot report and the sequencer's weekly review of pilot {pilot_id}.",
    ]


def render_report(
    run: PilotRun, figures: PilotFigures, review: Mapping[str, Any], charts: Sequence[ReportImage]
) -> str:
    name = str(review.get("name") or review.get("pilot_id") or "Pilot")
    by_file = {c.file: c for c in charts}

    def images(*files: str) -> str:
        return "".join(_figure(by_file[f]) for f in files if f in by_file)

    arm_columns = ("", ARM_LABELS["outreach"], ARM_LABELS["holdout"], "Difference (95% CI)")
    how = how_it_was_run(run, figures, str(review.get("pilot_id") or ""))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(name)}: pilot report</title><style>{STYLE}</style></head>
<body>
<h1>{_e(name)}</h1>
<p class="rehearsal">Rehearsal on synthetic patients at {_e(run.clinic_name)}.</p>
<p class="headline">{_e(headline(run, figures))}</p>
{"".join(f"<p>{_e(s)}</p>" for s in findings(figures))}
<h2>Both arms</h2>
{_table(arm_columns, arm_table(figures), "arms")}
{images("rates.png", "revenue.png")}
<h2>Week by week</h2>
{images("weeks.png")}
<h2>Responses and objections</h2>
{images("responses.png")}
{_said(figures)}
<h2>Pilot versus the previous weeks (observational)</h2>
{"".join(f"<p>{_e(s)}</p>" for s in previous_lines(figures))}
{_table(PREVIOUS_COLUMNS, previous_rows(figures), "arms") if figures.previous else ""}
<h2>Week 3: objections by barrier, with example replies</h2>
{_objections(figures)}
<h2>The four weeks: checklists and decisions</h2>
{"".join(f"<p>{_e(s)}</p>" for s in cohort_lines(review))}
{_table(PHASE_COLUMNS, phase_rows(review), "review")}
<h2>Weekly review</h2>
{_table(REVIEW_COLUMNS, weekly_review(figures, review), "review")}
<h2>How this was run</h2>
{"".join(f"<p>{_e(p)}</p>" for p in how)}
<script>{SCRIPT}</script>
</body></html>
"""


def write_pilot_report(
    out_dir: Path,
    *,
    run: PilotRun,
    pilot: Mapping[str, Any],
    review: Mapping[str, Any],
    barriers: Mapping[str, Any] | None,
    objections: Sequence[Mapping[str, Any]] | None = None,
    record: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``out_dir/index.html``, its charts and ``pilot.json``; return the page's path.

    ``objections``: the week-3 review's (their examples carry the replies' words)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = read_pilot_figures(pilot, barriers, objections)
    charts = draw_charts(figures, out_dir)
    page = out_dir / "index.html"
    page.write_text(render_report(run, figures, review, charts), encoding="utf-8")
    kept = {"pilot": pilot, "review": review, "barriers": barriers, **(record or {})}
    (out_dir / "pilot.json").write_text(json.dumps(kept, indent=1, default=str), encoding="utf-8")
    return page
