"""The rehearsal's set-up: the cohort from the command line, and a practice weighted and sized
for it (pure; no stack)."""

from __future__ import annotations

import argparse

import pytest

from shared.events.common import Initiator, Segment, ServiceLine
from shared.events.pilot import CohortFilters
from simulator.journeys import VARIANTS
from simulator.model import Journey
from simulator.pilot_setup import (
    LINE_OF,
    NAMED_SHARE,
    CohortError,
    cohort_of,
    pilot_variants,
    practice_size,
)

COSMETIC = tuple(line for line in ServiceLine if line.is_cosmetic)


def options(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**kw)


def test_the_command_line_names_the_cohort_and_cosmetic_means_every_cosmetic_line() -> None:
    cohort = cohort_of(options(service_lines="cosmetic", cancelled_by="patient", max_age_days=21))
    assert cohort == CohortFilters(
        service_lines=COSMETIC, cancelled_by=(Initiator.patient,), max_age_days=21
    )
    assert cohort_of(options()) == CohortFilters()
    with pytest.raises(CohortError, match=r"--cancellation-reasons: .*no_show"):
        cohort_of(options(cancellation_reasons="rain"))


def test_a_cohort_naming_services_gets_them_as_half_of_the_segments_stories() -> None:
    variants, share = pilot_variants(
        Segment.cancelled_not_rescheduled, CohortFilters(service_lines=COSMETIC)
    )
    weights = variants[Journey.canceller]
    named = sum(w for code, w in weights if LINE_OF[code] in COSMETIC)
    assert share == NAMED_SHARE
    assert named / sum(w for _, w in weights) == pytest.approx(NAMED_SHARE, abs=0.01)
    assert {code for code, _ in weights} == {code for code, _ in VARIANTS[Journey.canceller]}
    assert pilot_variants(Segment.cancelled_not_rescheduled, CohortFilters()) == ({}, 1.0)
    with pytest.raises(CohortError, match="no lapsed_patient story for neurotoxin"):
        pilot_variants(
            Segment.lapsed_patient, CohortFilters(service_lines=(ServiceLine.neurotoxin,))
        )


def test_the_practice_grows_with_the_launch_group_and_a_narrower_cohort() -> None:
    base = practice_size(20, 30, 14, 1.0)
    assert practice_size(40, 30, 14, 1.0) > base
    assert practice_size(20, 30, 14, 0.5) == pytest.approx(2 * base, rel=0.02)
    assert practice_size(20, 60, 14, 1.0) < base  # more days to enrol in


def test_patients_open_about_a_third_of_the_tracked_links_they_receive() -> None:
    from simulator.patients import draw
    from simulator.phones import CLICK_SHARE, TRACKED_LINK

    body = (
        "Hi Ana, booking your skin check takes a minute: http://127.0.0.1:8004/b/Ab3dE6gH or "
        "reply BOOK and we will text you open times. Bluebonnet Dermatology"
    )
    assert TRACKED_LINK.findall(body) == ["http://127.0.0.1:8004/b/Ab3dE6gH"]
    assert TRACKED_LINK.findall("Reply BOOK or call (512) 555-0100.") == []
    opened = sum(draw(7, f"P-{n:06d}", "opens link", "1") < CLICK_SHARE for n in range(2000))
    assert abs(opened / 2000 - CLICK_SHARE) < 0.04
