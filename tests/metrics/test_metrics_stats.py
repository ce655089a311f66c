"""Confidence intervals against published textbook values, pilot weeks and per-event counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.metrics.domain import counting, pilots
from services.metrics.domain.rates import FUNNEL_RATES, reactivation_rate, with_rates
from services.metrics.domain.stats import newcombe_difference, wald_difference, wilson
from shared.events.messages import BlockReason
from tests.metrics.story import Story

# Newcombe RG (1998), "Interval estimation for the difference between independent proportions:
# comparison of eleven methods", Statistics in Medicine 17:873-890, Table II, method 10 (the
# hybrid score interval), examples (a) to (h), 95% limits to four decimals.
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "limits"), NEWCOMBE_TABLE_II)
def test_the_difference_interval_matches_newcombe_s_published_table(
    counts: tuple[int, int, int, int], limits: tuple[float, float]
) -> None:
    d = newcombe_difference(*counts)
    assert (round(d.low or 0, 4), round(d.high or 0, 4)) == limits
    assert d.estimate == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])


def test_the_wald_interval_of_newcombe_s_first_example_matches_his_method_1() -> None:
    d = wald_difference(56, 70, 48, 80)
    assert (round(d.low or 0, 4), round(d.high or 0, 4)) == (0.0575, 0.3425)


def test_the_wilson_interval_matches_the_single_proportion_textbook_case() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", 81/263.
    interval = wilson(81, 263)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.2553, 0.3662)


def test_an_empty_arm_has_no_difference_rather_than_a_made_up_one() -> None:
    d = newcombe_difference(3, 10, 0, 0)
    assert d.p1 == pytest.approx(0.3)
    assert (d.p2, d.estimate, d.low, d.high) == (None, None, None, None)


@given(
    n1=st.integers(1, 300),
    n2=st.integers(1, 300),
    f1=st.floats(0, 1),
    f2=st.floats(0, 1),
)
def test_the_interval_contains_the_estimate_and_stays_within_minus_one_and_one(
    n1: int, n2: int, f1: float, f2: float
) -> None:
    x1, x2 = round(f1 * n1), round(f2 * n2)
    d = newcombe_difference(x1, n1, x2, n2)
    assert d.low is not None and d.high is not None and d.estimate is not None
    assert -1 - 1e-9 <= d.low <= d.estimate + 1e-12
    assert d.estimate - 1e-12 <= d.high <= 1 + 1e-9


def test_pilot_weeks_are_seven_day_blocks_from_the_pilots_first_day() -> None:
    start = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    assert pilots.pilot_week(start, start) == 1
    assert pilots.pilot_week(start, start + timedelta(days=6, hours=23)) == 1
    assert pilots.pilot_week(start, start + timedelta(days=7)) == 2
    assert pilots.pilot_week(start, start + timedelta(days=27)) == 4
    assert pilots.phase(1).startswith("define") and "nobody is messaged" in pilots.phase(1)
    assert pilots.phase(2) == "launch to the small group"
    assert pilots.phase(3) == "review responses and objections, by barrier with example replies"
    assert pilots.phase(4).startswith("compare") and "previous weeks" in pilots.phase(4)
    assert pilots.phase(5) == "after the pilot: follow outcomes"


def test_the_pilot_comparison_is_outreach_minus_holdout_for_rebooking_and_completion() -> None:
    arms = {
        "outreach": {"assigned": 70, "rebooked": 60, "completed": 56},
        "holdout": {"assigned": 80, "rebooked": 50, "completed": 48},
    }
    by_figure = {c.figure: c for c in pilots.compare(arms)}
    completed = by_figure["completed_rate"]
    assert completed.outreach == (56, 70)
    assert completed.holdout == (48, 80)
    assert round(completed.difference.low or 0, 4) == 0.0524
    assert by_figure["rebooked_rate"].difference.estimate == pytest.approx(60 / 70 - 50 / 80)


def test_rates_with_no_denominator_are_unknown_not_zero() -> None:
    row = with_rates({"messaged": 0, "reached": 0, "replied": 0}, FUNNEL_RATES)
    assert row["response_rate"] is None
    assert with_rates({"reached": 4, "replied": 1}, FUNNEL_RATES)["response_rate"] == 0.25
    assert reactivation_rate("reactivation", 2, 8) == 0.25
    assert reactivation_rate("recall", 2, 8) is None


def test_send_outcomes_are_counted_by_clinic_channel_status_and_reason() -> None:
    story = Story("clinic-count")
    sequence = story.started(story.eligible(0), 1)
    story.sent(sequence, 2)
    story.blocked(sequence, 3, BlockReason.quiet_hours)
    story.blocked(sequence, 4, BlockReason.quiet_hours)

    counts = counting.send_tally(story.events)
    assert counts == {
        ("clinic-count", "sms", "sent", ""): 1,
        ("clinic-count", "sms", "delivered", ""): 1,
        ("clinic-count", "sms", "blocked", "quiet_hours"): 2,
    }
    assert counting.tally(story.events)[("clinic-count", "MessageBlocked")] == 2
