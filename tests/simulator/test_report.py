"""The pilot report: its words come from the figures, and it renders in a real browser.

The fixtures are built the way the services build their answers: the metrics pilot report with
the metrics domain's own ``compare`` (Newcombe's interval), ``with_rates`` and ``phase``; the
sequencer's review with its ``review`` rules and ``view``. They cross a JSON round trip, as they
would over HTTP.
"""

from __future__ import annotations

import json
import re
import struct
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from services.metrics.api.pilots import PREVIOUS_LABEL
from services.metrics.domain.pilots import CAUSAL, compare, compare_with, phase
from services.metrics.domain.rates import PILOT_RATES, with_rates
from services.metrics.repository.reports import REPLY_FIGURES
from services.sequencer.api.pilots import view
from services.sequencer.domain import pilot_phases
from services.sequencer.domain import pilots as sequencer_pilots
from services.sequencer.domain.pilots import Pilot
from shared.events.common import Segment, ServiceLine
from shared.events.pilot import CohortFilters
from simulator.pilot_figures import read_pilot_figures
from simulator.report import (
    PilotRun,
    arm_table,
    findings,
    headline,
    render_report,
    write_pilot_report,
)
from simulator.report_sections import (
    objection_items,
    phase_rows,
    previous_lines,
    previous_rows,
    weekly_review,
)
from tests.simulator.chromium import dump_dom, ensure_chromium, screenshot, serve

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PILOT_ID = "cnr-spring"


# --- fixture builders --------------------------------------------------------------------------


def arm_row(
    arm: str, assigned: int, rebooked: int, completed: int, revenue_cents: int
) -> dict[str, Any]:
    """One row of ``reports.pilot_arms``: an arm counted from assignment."""
    messaged = assigned if arm == "outreach" else 0
    return {
        "arm": arm,
        "first_assigned_at": START,
        "assigned": assigned,
        "messaged": messaged,
        "reached": messaged,
        "clicked": messaged // 2,
        "replied": messaged // 3,
        "opted_out": messaged // 20,
        "rebooked": rebooked,
        "completed": completed,
        "completed_visits": completed,
        "revenue_cents": revenue_cents,
        "hours_to_booking_median": 30.5,
        "hours_to_booking_p90": 120.0,
    }


def week_row(week: int, arm: str, **figures: int) -> dict[str, Any]:
    """One row of ``reports.pilot_weeks``: every figure present, zero unless given."""
    empty = dict.fromkeys(["assigned", "messaged", "rebooked", "opt_outs", *REPLY_FIGURES], 0)
    return {"week": week, "arm": arm, **empty, **figures}


def _compared(found: Any, other: str) -> list[dict[str, Any]]:
    return [
        {
            "figure": c.figure,
            "outreach": {"successes": c.outreach[0], "assigned": c.outreach[1],
                         "rate": c.difference.p1},
            other: {"successes": c.holdout[0], "assigned": c.holdout[1],
                    "rate": c.difference.p2},
            "difference": c.difference.estimate,
            "ci_low": c.difference.low,
            "ci_high": c.difference.high,
            "method": c.difference.method,
        }
        for c in found
    ]  # fmt: skip


OBJECTIONS = [
    {"barrier": "timing", "intent": None, "replies": 6, "examples": [
        {"patient_key": "clinic-demo:P-000012", "reply_id": "in-1", "at": "2026-03-20T15:00Z",
         "intent": "later", "words": "Can't do March, maybe after the 20th?"}]},
    {"barrier": "cost", "intent": None, "replies": 5, "examples": [
        {"patient_key": "clinic-demo:P-000031", "reply_id": "in-2", "at": "2026-03-21T10:00Z",
         "intent": "later", "words": "How much is it without <insurance>?"}]},
    {"barrier": None, "intent": "decline", "replies": 3, "examples": []},
]  # fmt: skip


def metrics_pilot(
    arms: list[dict[str, Any]],
    weeks: list[dict[str, Any]],
    previous: dict[str, int] | None = None,
    objections: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What ``GET /reports/pilots/{id}`` answers, assembled as its route assembles it."""
    by_arm = {r["arm"]: with_rates(r, PILOT_RATES) for r in arms}
    comparison = _compared(compare(by_arm), "holdout")
    against = _compared(compare_with(by_arm.get("outreach"), previous), "previous")
    body = {
        "report": "pilot",
        "pilot_id": PILOT_ID,
        "started_at": START,
        "attribution_window_days": 30,
        "arms": {arm: by_arm.get(arm) for arm in ("outreach", "holdout")},
        "comparison": comparison,
        "previous_process": {
            "label": PREVIOUS_LABEL,
            "cohort": previous,
            "comparison": against if previous is not None else [],
        },
        "causal_claim": {"supported_by": "holdout", "why": CAUSAL},
        "objections": objections or [],
        "weeks": [{**w, "phase": phase(w["week"])} for w in weeks],
    }
    wire: dict[str, Any] = json.loads(json.dumps(body, default=str))
    return wire


def sequencer_review(
    facts: list[tuple[str, str, datetime]], reviews: list[dict[str, Any]]
) -> dict[str, Any]:
    """What ``GET /pilots/{id}/review`` answers, from the sequencer's own review rules."""
    cosmetic = CohortFilters(service_lines=(ServiceLine.neurotoxin, ServiceLine.filler))
    pilot = sequencer_pilots.start(
        Pilot(PILOT_ID, "clinic-demo", "Cancellation recovery, spring",
              Segment.cancelled_not_rescheduled, 200, 0.2, cohort=cosmetic),
        START,
    )  # fmt: skip
    weeks = sequencer_pilots.review(pilot, facts)
    now = START + timedelta(days=29)
    body = {
        **view(pilot, now),
        "arms": {"outreach": 160, "holdout": 40},
        "screened": {"enrolled": 200, "held": 31, "out": 57},
        "phases": pilot_phases.phases(pilot, reviews, now),
        "weeks": [
            {"week": w, **{arm: cell.as_dict() for arm, cell in sorted(weeks[w].items())}}
            for w in sorted(weeks)
        ],
        "reviews": reviews,
        "note": "Operational counts per arm and week.",
    }
    wire: dict[str, Any] = json.loads(json.dumps(body, default=str))
    return wire


def barriers_report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``GET /reports/barriers?pilot_id=...&group_by=week``: replies by ISO week (Monday)."""
    empty = dict.fromkeys([*REPLY_FIGURES, "opt_outs"], 0)
    return {"report": "barriers", "filters": {}, "rows": [{**empty, **r} for r in rows]}


def run(**changes: Any) -> PilotRun:
    base = {
        "segment": "cancelled_not_rescheduled",
        "patients": 200,
        "holdout_share": 0.2,
        "days": 30,
        "seed": 7,
        "clinic_name": "Lakeside Dermatology",
        "simulated_start": date(2026, 3, 2),
        "simulated_end": date(2026, 4, 1),
        "generated_at": datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
    }
    return PilotRun(**{**base, **changes})


def spring_pilot(
    outreach: tuple[int, int, int] = (160, 50, 40),
    holdout: tuple[int, int, int] = (40, 5, 4),
    previous: tuple[int, int, int] | None = (90, 14, 11),
) -> dict[str, Any]:
    """(assigned, rebooked, completed) per arm, over four weeks, with replies and barriers."""
    weeks = [
        week_row(1, "outreach", assigned=60, messaged=55, rebooked=10, replies=14, objections=4,
                 intent_book=8, intent_later=4, intent_question=2, barrier_timing=3, opt_outs=2),
        week_row(1, "holdout", assigned=15, rebooked=1),
        week_row(2, "outreach", assigned=70, messaged=72, rebooked=20, replies=20, objections=7,
                 intent_book=11, intent_decline=3, intent_later=4, intent_question=2,
                 barrier_cost=5, barrier_timing=2, opt_outs=3),
        week_row(2, "holdout", assigned=20, rebooked=2),
        week_row(3, "outreach", assigned=30, messaged=33, rebooked=15, replies=9, objections=2,
                 intent_book=7, intent_no_longer_needed=2, barrier_timing=1),
        week_row(3, "holdout", assigned=5, rebooked=1),
        week_row(4, "outreach", rebooked=outreach[1] - 45),
        week_row(4, "holdout", rebooked=holdout[1] - 4),
    ]  # fmt: skip
    arms = [
        arm_row("outreach", outreach[0], outreach[1], outreach[2], outreach[2] * 18_500),
        arm_row("holdout", holdout[0], holdout[1], holdout[2], holdout[2] * 18_500),
    ]
    before = None
    if previous is not None:
        n, rebooked, completed = previous
        before = {"assigned": n, "messaged": 0, "clicked": 0, "rebooked": rebooked,
                  "completed": completed, "revenue_cents": completed * 18_500, "unscreened": 0,
                  "screened_out": 40}  # fmt: skip
    return metrics_pilot(arms, weeks, before, OBJECTIONS)


def spring_review() -> dict[str, Any]:
    day = timedelta(days=1)
    facts = [("outreach", "started:outreach", START + day)] * 60
    facts += [("holdout", "started:holdout", START + day)] * 15
    facts += [("outreach", "booking_requested", START + 9 * day)] * 6
    facts += [("outreach", "reply:book", START + 10 * day)] * 11
    reviews = [
        {"week": 1, "decision": "launch", "note": "", "reviewed_by": "admin-1",
         "reviewed_at": (START + 7 * day).isoformat(),
         "checklist": ["eligibility", "words", "escalation_route", "holdout"]},
        {"week": 3, "decision": "continue", "note": "Timing is the main barrier.",
         "reviewed_by": "staff-1", "reviewed_at": (START + 16 * day).isoformat(),
         "checklist": ["objections"]},
    ]  # fmt: skip
    return sequencer_review(facts, reviews)


# --- the words come from the data --------------------------------------------------------------


def test_the_headline_gives_each_arms_rebooking_and_the_interval_of_the_difference() -> None:
    figures = read_pilot_figures(spring_pilot())
    d = figures.differences["rebooked_rate"]
    assert d.low is not None and d.high is not None
    sentence = headline(run(), figures)
    assert sentence.startswith("Messaging patients who cancelled rebooked 31% of them vs 12%")
    assert f"difference 19 points (95% CI {round(d.low * 100)} to {round(d.high * 100)})" in (
        sentence
    )
    assert "no clear difference" not in sentence


def test_different_figures_give_a_different_headline_and_table() -> None:
    first = read_pilot_figures(spring_pilot())
    second = read_pilot_figures(spring_pilot(outreach=(150, 75, 60), holdout=(50, 10, 8)))
    assert headline(run(), first) != headline(run(), second)
    assert "50% of them vs 20% without; difference 30 points" in headline(run(), second)
    rebooked = {row[0]: row for row in arm_table(second)}["Rebooked"]
    assert rebooked[1:3] == ("75 (50%)", "10 (20%)")
    assert rebooked[3].startswith("30 points (")
    assert {row[0]: row for row in arm_table(first)}["Rebooked"][1:3] == ("50 (31%)", "5 (12%)")


def test_an_interval_that_spans_zero_says_there_is_no_clear_difference() -> None:
    figures = read_pilot_figures(spring_pilot(outreach=(160, 32, 25), holdout=(40, 6, 5)))
    d = figures.differences["rebooked_rate"]
    assert d.low is not None and d.high is not None and d.low < 0 < d.high
    sentence = headline(run(), figures)
    assert "rebooked 20% of them vs 15% without; no clear difference" in sentence
    assert "95% CI \u2212" in sentence  # the interval's negative end is shown, not hidden


def test_a_difference_below_zero_says_fewer_rebooked_with_messages() -> None:
    figures = read_pilot_figures(spring_pilot(outreach=(160, 10, 5), holdout=(40, 20, 15)))
    sentence = headline(run(), figures)
    assert "difference \u221244 points" in sentence and "fewer with messages" in sentence


def test_without_a_holdout_arm_the_headline_says_there_is_nothing_to_compare() -> None:
    pilot = metrics_pilot([arm_row("outreach", 30, 9, 6, 0)], [week_row(1, "outreach")])
    sentence = headline(run(), read_pilot_figures(pilot))
    assert sentence.startswith("Not enough patients in both arms to compare yet: 30 enrolled")


def test_findings_give_completed_visits_revenue_and_the_barrier_named_most() -> None:
    said = findings(read_pilot_figures(spring_pilot()))
    assert said[0].startswith("Completed visits: 25% of patients messaged vs 10% without")
    assert said[1] == (
        "Revenue recovered: $7,400 from 160 patients messaged ($46 each) vs $740 from 40 "
        "($18 each)."
    )
    assert said[2] == (
        "Patients sent 43 replies, 13 of them objections; the barrier named most was timing; "
        "5 opted out."
    )


def test_the_weekly_review_lists_each_week_with_its_responses_and_the_teams_decision() -> None:
    rows = weekly_review(read_pilot_figures(spring_pilot()), spring_review())
    assert [r[0] for r in rows] == ["1", "2", "3", "4"]
    week2 = rows[1]
    assert week2[1] == "launch to the small group"
    assert week2[2:5] == ("70 / 20", "72", "20 / 2")
    assert week2[5] == "6"  # booking requests, from the sequencer's review
    assert week2[6:10] == ("20", "7", "cost", "3")
    assert rows[2][10] == "continue: Timing is the main barrier."
    assert rows[0][10] == "launch"
    assert rows[1][10] == "not recorded"


def test_the_previous_weeks_are_compared_with_their_interval_and_called_observational() -> None:
    figures = read_pilot_figures(spring_pilot())
    rows = {row[0]: row for row in previous_rows(figures)}
    assert rows["Patients"][1:3] == ("160", "90")
    rebooked = rows["Rebooked"]
    assert rebooked[1:3] == ("50 (31%)", "14 (16%)")
    d = figures.previous_differences["rebooked_rate"]
    assert d.low is not None and d.high is not None
    assert rebooked[3] == f"16 points ({round(d.low * 100)} to {round(d.high * 100)})"
    said = previous_lines(figures)
    assert "Observational" in said[0] and "same 30 days" in said[0]
    assert said[-1].startswith("Only the holdout comparison supports a causal claim")
    none = read_pilot_figures(spring_pilot(previous=None))
    assert previous_rows(none) == [] and "no comparison" in previous_lines(none)[0]


def test_the_week_three_review_lists_objections_by_barrier_with_example_replies() -> None:
    items = objection_items(read_pilot_figures(spring_pilot()))
    assert items == [
        ("timing: 6 replies", ["Can't do March, maybe after the 20th?"]),
        ("cost: 5 replies", ["How much is it without <insurance>?"]),
        ("declined: 3 replies", []),
    ]
    page = render_report(run(), read_pilot_figures(spring_pilot()), spring_review(), [])
    assert "<blockquote>How much is it without &lt;insurance&gt;?</blockquote>" in page
    assert "P-000031" not in page and "in-2" not in page  # references stay out of the page


def test_the_four_weeks_show_each_checklist_and_the_decision_recorded() -> None:
    rows = phase_rows(spring_review())
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"]
    assert rows[0][2] == "4 of 4: eligibility, words, escalation route, holdout"
    assert rows[0][3] == "launch"
    assert rows[2][2:] == ("1 of 3: objections", "continue: Timing is the main barrier.")
    assert rows[3][3] == "not recorded"


def test_clicks_are_shown_in_the_table_but_never_make_the_headline() -> None:
    clicky = spring_pilot()
    clicky["arms"]["outreach"]["clicked"] = 150  # far more clicks than bookings
    figures = read_pilot_figures(clicky)
    table = {row[0]: row for row in arm_table(figures)}
    assert table["Opened the booking link"][1] == "150 (94%)"
    sentences = [headline(run(), figures), *findings(figures)]
    assert all("click" not in s.lower() and "link" not in s.lower() for s in sentences)
    assert headline(run(), figures) == headline(run(), read_pilot_figures(spring_pilot()))


def test_calendar_weeks_from_the_barriers_report_label_the_responses_chart() -> None:
    barriers = barriers_report(
        [
            {"clinic_id": "clinic-demo", "week": "2026-03-02", "replies": 5, "intent_book": 5},
            {"clinic_id": "clinic-demo", "week": "2026-03-09", "replies": 3, "barrier_cost": 2},
        ]
    )
    figures = read_pilot_figures(spring_pilot(), barriers)
    assert [r.label for r in figures.responses] == ["week of Mar 2", "week of Mar 9"]
    assert figures.responses[1].barriers["cost"] == 2
    assert figures.pilot_week_responses[2].replies == 20  # the review keeps pilot weeks


def test_every_string_put_into_the_page_is_escaped() -> None:
    review = spring_review()
    review["name"] = "<script>alert('x')</script>"
    review["reviews"][0]["note"] = 'Cost <b>matters</b> & "timing"'
    page = render_report(run(clinic_name="Smith & Jones <Derm>"), read_pilot_figures(
        spring_pilot()), review, [])  # fmt: skip
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)" in page
    assert "<b>matters</b>" not in page and "Cost &lt;b&gt;matters&lt;/b&gt; &amp;" in page
    assert "Smith &amp; Jones &lt;Derm&gt;" in page
    assert page.count("<script>") == 1  # only the report's own chart counter


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_the_written_report_is_self_contained_and_its_images_match_their_files(
    tmp_path: Path,
) -> None:
    page = write_pilot_report(
        tmp_path, run=run(), pilot=spring_pilot(), review=spring_review(), barriers=None
    )
    text = page.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and "<link" not in text
    images = re.findall(r"<img src='([^']+)' alt='([^']+)' width='(\d+)' height='(\d+)'>", text)
    assert [i[0] for i in images] == ["rates.png", "revenue.png", "weeks.png", "responses.png"]
    for file, alt, width, height in images:
        assert png_size(tmp_path / file) == (int(width), int(height))
        assert len(alt) > 20
    assert "seed 7" in text and "Lakeside Dermatology" in text and "synthetic patients" in text
    assert "staff-1" not in text  # who reviewed is not the report's business


def test_no_revenue_chart_is_drawn_when_no_visit_brought_revenue(tmp_path: Path) -> None:
    arms = [arm_row("outreach", 20, 4, 0, 0), arm_row("holdout", 5, 1, 0, 0)]
    pilot = metrics_pilot(arms, [week_row(1, "outreach", assigned=20)])
    write_pilot_report(tmp_path, run=run(), pilot=pilot, review=spring_review(), barriers=None)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "rates.png",
        "responses.png",
        "weeks.png",
    ]


# --- it renders in a real browser --------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    return ensure_chromium()


def test_the_report_renders_in_headless_chromium_with_every_chart_loaded(
    tmp_path: Path, chromium: str
) -> None:
    out = tmp_path / "report"
    barriers = barriers_report([{"week": "2026-03-02", "replies": 5, "intent_book": 5}])
    write_pilot_report(
        out, run=run(), pilot=spring_pilot(), review=spring_review(), barriers=barriers
    )
    with serve(out) as url:
        dom = dump_dom(chromium, f"{url}/index.html")
        shot = screenshot(chromium, f"{url}/index.html", tmp_path / "shot.png")
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None, dom[:500]
    assert 'data-charts="4"' in body.group(0)
    assert 'data-charts-loaded="4"' in body.group(0)
    assert "Messaging patients who cancelled rebooked 31% of them" in dom

    with Image.open(shot) as image:
        assert image.format == "PNG" and image.size == (1200, 2000)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # text, bars and lines, not a blank page
