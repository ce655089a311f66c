"""`revisit pilot` as a practice runs it: a stack of its own, the synthetic practice, a pilot
defined and started through the sequencer's API, days passing, a report written. Small and
short here (a cohort of 30, ten days); the report must still compare both arms and render its
charts in a real browser."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared.events.common import Segment
from simulator.model import Journey
from simulator.pilot import SEGMENT_SHARE, pilot_mix
from tests.simulator.chromium import dump_dom, ensure_chromium, serve

PILOT_TIMEOUT_S = 600


def test_the_pilot_mix_gives_the_piloted_segment_its_share_and_keeps_every_journey() -> None:
    mix = pilot_mix(Segment.chronic_review_overdue)
    assert sum(mix.values()) == pytest.approx(1.0)
    assert mix[Journey.surveillance] + mix[Journey.chronic] == pytest.approx(SEGMENT_SHARE)
    assert all(share > 0 for share in mix.values()) and set(mix) == set(Journey)


def test_an_unknown_segment_is_refused_before_anything_starts(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "revisit", "pilot", "--segment", "everyone", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown --segment" in result.stderr and "cancelled_not_rescheduled" in result.stderr
    assert not (tmp_path / "index.html").exists()


def test_a_short_pilot_writes_a_report_that_renders_with_its_charts(tmp_path: Path) -> None:
    out = tmp_path / "report"
    argv = [sys.executable, "-m", "revisit", "pilot", "--segment", "cancelled_not_rescheduled"]
    argv += ["--patients", "30", "--holdout", "0.3", "--days", "10", "--follow-days", "4"]
    argv += ["--seed", "5", "--out", str(out)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=PILOT_TIMEOUT_S)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "report written" in result.stdout
    page = (out / "index.html").read_text()
    assert "Rehearsal on synthetic patients" in page and "seed 5" in page
    enrolled = re.search(r"Patients enrolled</t[hd]>\s*<td[^>]*>(\d+)</td>\s*<td[^>]*>(\d+)", page)
    assert enrolled is not None, page[:2000]
    pilot_arm, control_arm = int(enrolled.group(1)), int(enrolled.group(2))
    assert pilot_arm > 0 and control_arm > 0, (pilot_arm, control_arm)
    charts = sorted(p.name for p in out.glob("*.png"))
    assert {"rates.png", "weeks.png", "responses.png"} <= set(charts)

    chromium = ensure_chromium()
    with serve(out) as url:
        dom = dump_dom(chromium, f"{url}/index.html")
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None
    count = re.search(r'data-charts="(\d+)"', body.group(0))
    assert count is not None and f'data-charts-loaded="{count.group(1)}"' in body.group(0)
