"""The pilot pages' pure core: the definition form read back, the weeks' decisions, the words a
segment gets, objections with their words, the report's figures and headline, and the charts'
geometry."""

from __future__ import annotations

import pytest

from services.console.domain.charts import (
    PLOT_WIDTH,
    PLOT_X,
    Group,
    Row,
    bar_chart,
    count_ticks,
    nice_top,
)
from services.console.domain.pilot_form import form_of, read_form, refusal_by_field
from services.console.domain.pilot_report import Difference, headline, read_report
from services.console.domain.pilots import (
    decision_choices,
    example_patients,
    objections,
    read_decision,
    tabs,
    week_shown,
    words_for,
)
from tests.console.pilot_world import WORKFLOW, report

FORM = {
    "name": "Laser",
    "segment": "cancelled_not_rescheduled",
    "cohort_size": "10",
    "holdout_percent": "20",
    "days": "30",
    "baseline_days": "28",
}


def test_the_form_becomes_the_sequencers_definition_with_only_the_filters_given() -> None:
    definition, _, errors = read_form(
        {**FORM, "c.urgencies.routine": "on", "location_ids": "loc-1 loc-2", "exclusive": "on"},
        new=True,
    )
    assert errors == {}
    assert definition == {
        "name": "Laser",
        "segment": "cancelled_not_rescheduled",
        "cohort": {"urgencies": ["routine"], "location_ids": ["loc-1", "loc-2"]},
        "cohort_size": 10,
        "holdout_share": 0.2,
        "days": 30,
        "baseline_days": 28,
        "exclusive": True,
    }


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"name": ""}, "name", "Name: 1 to 120 characters"),
        ({"segment": "everyone"}, "segment", "Segment: choose one of the list"),
        ({"days": "7"}, "days", "Days (the define week included): from 8 to 365"),
        ({"baseline_days": "a month"}, "baseline_days", "a whole number from 7 to 365"),
        ({"provider_ids": "dr 1;x"}, "provider_ids", "Providers: ids of letters"),
        ({"min_age_days": "30", "max_age_days": "10"}, "cohort", "min_age_days must not be"),
    ],
)
def test_each_wrong_field_is_named_with_what_is_allowed(
    change: dict[str, str], field: str, words: str
) -> None:
    _, form, errors = read_form({**FORM, **change}, new=True)
    assert list(errors) == [field] and words in errors[field]
    assert form.text["name"] == {**FORM, **change}["name"]  # what was typed is kept


def test_a_draft_fills_the_form_back() -> None:
    pilot = {
        "name": "Laser",
        "pilot_id": "laser",
        "segment": "cancelled_not_rescheduled",
        "cohort": {"service_lines": ["laser"], "provider_ids": ["dr-1", "dr-2"], "max_age_days": 9},
        "cohort_size": 12,
        "holdout_share": 0.25,
        "days": 30,
        "baseline_days": 21,
        "exclusive": True,
    }
    form = form_of(pilot)
    assert form.is_ticked("service_lines", "laser") and not form.is_ticked("service_lines", "acne")
    assert (form.text["holdout_percent"], form.text["provider_ids"]) == ("25", "dr-1, dr-2")
    assert (form.text["max_age_days"], form.text["min_age_days"], form.exclusive) == ("9", "", True)


def test_the_sequencers_refusal_lands_on_the_field_it_names() -> None:
    detail = [
        {"where": "body.holdout_share", "problem": "Input should be less than or equal to 0.9"},
        {"where": "body.cohort.service_lines[0]", "problem": "Input should be a valid value"},
    ]
    found = refusal_by_field(detail)
    assert set(found) == {"holdout_percent", "cohort"}
    assert found["cohort"] == "cohort.service_lines[0]: Input should be a valid value"
    assert refusal_by_field("a pilot with this id already exists") == {
        "": "a pilot with this id already exists"
    }


def test_the_shown_week_is_the_asked_one_or_the_current_one_up_to_the_fourth() -> None:
    assert [week_shown(None, w) for w in (None, 1, 3, 4, 9)] == [1, 1, 3, 4, 4]
    assert week_shown(2, 4) == 2
    assert [(t.week, t.begun, t.current) for t in tabs(6)][-1] == (4, True, True)
    assert [t.begun for t in tabs(2)] == [True, True, False, False]


def test_decisions_offered_follow_the_role_and_the_launch_is_offered_once() -> None:
    allowed = ["launch", "adjust", "stop"]
    operator = decision_choices(allowed, is_admin=False, launched=False)
    assert [(c.value, c.allowed) for c in operator] == [
        ("launch", False),
        ("adjust", True),
        ("stop", False),
    ]
    assert [c.value for c in decision_choices(allowed, True, launched=True)] == ["adjust", "stop"]
    phase = {"week": 2, "decisions_allowed": ["continue"], "checklist": [{"item": "opt_outs"}]}
    body, wrong = read_decision({"decision": "continue", "check.opt_outs": "on"}, phase)
    assert wrong is None and body["checklist"] == ["opt_outs"] and body["week"] == 2
    _, wrong = read_decision({"decision": "expand"}, phase)
    assert wrong == "Choose the decision that ends the week: continue"
    _, wrong = read_decision({"decision": "continue", "note": "x" * 1001}, phase)
    assert wrong is not None and "at most 1000" in wrong


def test_the_words_are_those_of_the_workflows_serving_the_segment_and_its_lines() -> None:
    laser_only = {
        **WORKFLOW,
        "workflow_key": "laser_series",
        "routes": [{"segment": "cancelled_not_rescheduled", "service_lines": ["laser"]}],
    }
    templates = [
        {"workflow_key": "cancellation_recovery", "step": 1, "channel": "sms", "language": "en",
         "status": "approved", "body": "library words", "clinic_id": None},
        {"workflow_key": "cancellation_recovery", "step": 1, "channel": "sms", "language": "en",
         "status": "approved", "body": "the clinic's words", "clinic_id": "c"},
        {"workflow_key": "cancellation_recovery", "step": 1, "channel": "sms", "language": "es",
         "status": "draft", "body": "palabras", "clinic_id": "c"},
    ]  # fmt: skip
    steps = words_for("cancelled_not_rescheduled", ["acne"], [WORKFLOW, laser_only], templates)
    assert [(s.workflow, s.step) for s in steps] == [
        ("cancellation_recovery", 1),
        ("cancellation_recovery", 2),
    ]
    first = steps[0]
    assert first.words == "the clinic's words" and first.languages == {
        "en": "approved",
        "es": "draft",
    }
    assert not first.approved and steps[1].words is None
    assert words_for("lapsed_patient", None, [WORKFLOW], templates) == []


def test_objections_carry_the_words_of_the_reply_they_refer_to_and_nothing_else() -> None:
    groups = report("c:p-1")["objections"] + [
        {"barrier": None, "intent": "later", "replies": 1,
         "examples": [{"patient_key": "c:p-2", "reply_id": "r-9", "at": "", "intent": "later"}]},
    ]  # fmt: skip
    assert example_patients(groups) == ["c:p-1", "c:p-2"]
    conversations = {
        "c:p-1": [{"message_id": "in-c:p-1", "body": "It costs too much"}, {"message_id": "x"}],
        "c:p-2": None,  # the messenger did not answer
    }
    found = objections(groups, conversations)
    assert [(o.label, o.replies) for o in found] == [("Barrier: cost", 2), ("Later", 1)]
    assert [e.words for o in found for e in o.examples] == ["It costs too much", None]


def test_the_headline_claims_a_difference_only_when_the_holdouts_interval_shows_one() -> None:
    unclear = Difference("holdout", "rebooked_rate", 0.2, -0.05, 0.4)
    clear = Difference("holdout", "rebooked_rate", 0.2, 0.05, 0.4)
    previous = Difference("previous", "rebooked_rate", 0.3, 0.1, 0.5)
    assert headline([unclear, previous]).startswith("No difference in rebooking is shown")
    assert headline([clear]).startswith("The pilot's patients rebooked more than the holdout")
    assert headline([Difference("holdout", "rebooked_rate", None, None, None)]).startswith(
        "Not enough patients"
    )
    assert headline([previous]).startswith("Not enough patients")  # never from the previous weeks


def test_the_report_reads_three_groups_and_both_comparisons() -> None:
    read = read_report(report("c:p-1"))
    assert [g.key for g in read.groups] == ["outreach", "holdout", "previous"]
    assert read.groups[0].shown("rebooked_rate") == "40% (4 of 10)"
    assert read.groups[1].shown("completed_rate") == "0% (0 of 2)"
    assert [(d.against, d.figure, d.shown) for d in read.differences] == [
        ("holdout", "rebooked_rate", False),
        ("holdout", "completed_rate", False),
        ("previous", "rebooked_rate", True),
        ("previous", "completed_rate", False),
    ]
    assert [c.slug for c in read.charts] == ["pilot-rates", "pilot-differences", "pilot-weeks"]
    assert "Rebooked against the previous weeks: +30.0 points" in read.charts[1].summary


def test_bars_are_proportional_start_at_zero_and_intervals_are_whiskers() -> None:
    rows = (
        Row("up", 0.5, "+50", "bar-a", 0.25, 0.75),
        Row("down", -0.25, "-25", "bar-b"),
        Row("none", None, "no figure", "bar-c"),
    )
    chart = bar_chart("c", "t", "s", [Group("g", rows)], (-1.0, 1.0), [(0.0, "0")])
    zero = PLOT_X + PLOT_WIDTH / 2
    up, down = chart.rects
    assert (up.x, up.width) == (zero, PLOT_WIDTH / 4)
    assert (down.x + down.width, down.width) == (zero, PLOT_WIDTH / 8)
    interval = [line for line in chart.lines if line.kind == "interval"]
    assert len(interval) == 3  # the whisker and its two caps
    assert (interval[0].x1, interval[0].x2) == (zero + PLOT_WIDTH / 8, zero + 3 * PLOT_WIDTH / 8)
    assert any(line.kind == "zero" for line in chart.lines)
    assert [t.words for t in chart.texts if t.kind == "value"] == ["+50", "-25", "no figure"]
    with pytest.raises(ValueError):
        bar_chart("c", "t", "s", [], (1.0, 1.0), [])


def test_axis_ends_are_round() -> None:
    assert [nice_top(v, 0.1) for v in (0.0, 0.04, 0.3, 0.31)] == [0.1, 0.1, 0.3, 0.4]
    assert nice_top(12, 5) == 15
    assert [words for _, words in count_ticks(5)] == ["0", "5"]  # no half a reply
    assert [words for _, words in count_ticks(10)] == ["0", "5", "10"]
