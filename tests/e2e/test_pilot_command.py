"""`revisit pilot` as a practice runs it, on the playbook's own example: patients who cancelled
a cosmetic visit without rescheduling. A stack of its own, the synthetic practice, the pilot
defined through the sequencer's API and its four weeks passing, a report written.

What the playbook asks is checked on what the rehearsal read from the services
(``pilot.json``: the sequencer's preview and review, the sandbox's record of messages, the
metrics report) and on the page a practice would read, rendered in a real browser.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.events.common import Segment, ServiceLine
from simulator.model import Journey
from simulator.pilot_setup import SEGMENT_SHARE, pilot_mix
from tests.simulator.chromium import dump_dom, ensure_chromium, serve

# About 4 minutes on the reference machine; far more when other work shares its two cores.
PILOT_TIMEOUT_S = 1500
COSMETIC = {line.value for line in ServiceLine if line.is_cosmetic}


def test_the_pilot_mix_gives_the_piloted_segment_its_share_and_keeps_every_journey() -> None:
    mix = pilot_mix(Segment.chronic_review_overdue)
    assert sum(mix.values()) == pytest.approx(1.0)
    assert mix[Journey.surveillance] + mix[Journey.chronic] == pytest.approx(SEGMENT_SHARE)
    assert all(share > 0 for share in mix.values()) and set(mix) == set(Journey)


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--segment", "everyone"], "unknown --segment"),
        (["--segment", "lapsed_patient", "--service-lines", "neurotoxin"], "no lapsed_patient"),
        (["--segment", "cancelled_not_rescheduled", "--cancelled-by", "nobody"], "--cancelled-by"),
        (["--segment", "cancelled_not_rescheduled", "--days", "7"], "--days >= 8"),
    ],
)
def test_a_pilot_that_cannot_run_is_refused_before_anything_starts(
    tmp_path: Path, options: list[str], said: str
) -> None:
    argv = [sys.executable, "-m", "revisit", "pilot", *options, "--out", str(tmp_path)]
    # Refused while parsing its options; the timeout only guards a hang (a busy machine is slow).
    result = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert result.returncode == 2 and said in result.stderr, result.stderr
    assert not (tmp_path / "index.html").exists()


def _interval(comparison: list[dict[str, Any]], figure: str) -> tuple[float, float, float]:
    [found] = [c for c in comparison if c["figure"] == figure]
    assert None not in (found["difference"], found["ci_low"], found["ci_high"]), found
    low, estimate, high = found["ci_low"], found["difference"], found["ci_high"]
    assert -1 <= low <= estimate <= high <= 1
    return low, estimate, high


@pytest.mark.e2e
def test_the_playbooks_cosmetic_cancellation_pilot_runs_its_four_weeks(tmp_path: Path) -> None:
    out = tmp_path / "report"
    argv = [sys.executable, "-m", "revisit", "pilot", "--segment", "cancelled_not_rescheduled"]
    # The shortest pilot with all four weeks: the define week, launch, review, and a day of
    # week 4 to compare in.
    argv += ["--service-lines", "cosmetic", "--patients", "12", "--holdout", "0.25"]
    argv += ["--days", "22", "--follow-days", "0", "--seed", "5", "--out", str(out)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=PILOT_TIMEOUT_S)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    ran = json.loads((out / "pilot.json").read_text())
    review, report = ran["review"], ran["pilot"]

    # The cohort holds only cosmetic cancellations; the filters had others to leave out.
    enrolled = [p for p in ran["screened"]["patients"] if p["verdict"] == "enrolled"]
    left_out = [p for p in ran["screened"]["patients"] if p["verdict"] == "out"]
    assert enrolled and review["enrolled"] == len(enrolled) <= 12
    assert {p["segment"] for p in enrolled} == {"cancelled_not_rescheduled"}
    assert {p["service_line"] for p in enrolled} <= COSMETIC
    assert any(p["service_line"] not in COSMETIC for p in left_out)
    assert all(p["arm"] in ("outreach", "holdout") for p in enrolled)

    # Nobody is messaged in week 1: not the cohort, not anyone (an exclusive pilot).
    started = datetime.fromisoformat(review["starts_at"])
    launched = datetime.fromisoformat(review["launched_at"])
    assert launched == started + timedelta(days=7)
    assert ran["week1_outbound"] == 0
    assert all(w["week"] >= 2 for w in review["weeks"])  # no enrolment, no step in week 1
    assert all(w["week"] >= 2 or not w["messaged"] for w in report["weeks"])
    # The preview read at the end of week 1: the cohort held, nobody enrolled yet.
    week1 = ran["preview"]["patients"]
    held = [p for p in week1 if p["verdict"] == "held"]
    assert held and all(p["service_line"] in COSMETIC for p in held)
    assert not [p for p in week1 if p["verdict"] == "enrolled"]
    assert all(any("week 1 (define)" in w for w in p["why"]) for p in held)

    # Each week has its checklist and a recorded decision.
    decisions = {w["week"]: [d["decision"] for d in w["decisions"]] for w in review["phases"]}
    assert decisions[1] == ["launch"] and decisions[2] == ["continue"]
    assert decisions[3] == ["continue"] and decisions[4][0] in ("expand", "adjust")
    assert all(item["confirmed"] for item in review["phases"][0]["checklist"])

    # The week-3 review lists the objections by barrier, with example replies.
    objections = ran["week3"]
    assert objections, "no objection recorded by week 3"
    assert all(o["replies"] >= len(o["examples"]) >= 1 for o in objections)
    assert all(o["barrier"] or o["intent"] for o in objections)
    assert any(e["words"] for o in objections for e in o["examples"])

    # Week 4: the pilot against the holdout and against the previous weeks, each with its
    # interval; only the holdout supports a causal claim.
    arms = report["arms"]
    assert arms["outreach"]["assigned"] > 0 and arms["holdout"]["assigned"] > 0
    assert arms["holdout"]["messaged"] == 0
    for figure in ("rebooked_rate", "completed_rate"):
        _interval(report["comparison"], figure)
        _interval(report["previous_process"]["comparison"], figure)
    previous = report["previous_process"]["cohort"]
    assert previous["assigned"] > 0 and previous["messaged"] == 0
    assert report["previous_process"]["label"].startswith("observational")
    assert report["causal_claim"]["supported_by"] == "holdout"

    page = (out / "index.html").read_text()
    assert "Rehearsal on synthetic patients" in page and "seed 5" in page
    assert "Pilot versus the previous weeks (observational)" in page
    assert "Only the holdout comparison supports a causal claim" in page
    assert "Week 3: objections by barrier, with example replies" in page
    assert page.count("<blockquote>") >= 1
    enrolled_row = re.search(
        r"Patients enrolled</t[hd]>\s*<td[^>]*>(\d+)</td>\s*<td[^>]*>(\d+)", page
    )
    assert enrolled_row is not None, page[:2000]
    assert int(enrolled_row.group(1)) == arms["outreach"]["assigned"]
    charts = sorted(p.name for p in out.glob("*.png"))
    assert {"rates.png", "weeks.png", "responses.png"} <= set(charts)

    chromium = ensure_chromium()
    with serve(out) as url:
        dom = dump_dom(chromium, f"{url}/index.html")
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None
    count = re.search(r'data-charts="(\d+)"', body.group(0))
    assert count is not None and f'data-charts-loaded="{count.group(1)}"' in body.group(0)
