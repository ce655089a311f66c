"""Pilot assignment (deterministic, close to the asked share), its life, and the weekly review."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import get_args

import pytest

from services.sequencer.api.pilot_review import DecisionWord
from services.sequencer.domain import pilot_phases, pilots
from services.sequencer.domain.pilots import (
    Pilot,
    PilotStatus,
    Verdict,
    assign_arm,
    assignment_point,
)
from shared.events.common import ClinicalUrgency, Initiator, Segment, ServiceLine
from shared.events.outreach import Arm
from shared.events.pilot import CohortFilters
from shared.pilots import NeedFacts, Phase
from tests.sequencer.helpers import T0


def pilot(**kw: object) -> Pilot:
    base: dict[str, object] = {
        "pilot_id": "pilot-1",
        "clinic_id": "clinic-a",
        "name": "Spring",
        "segment": Segment.cancelled_not_rescheduled,
        "cohort_size": 100,
        "holdout_share": 0.2,
    }
    return Pilot(**{**base, **kw})  # type: ignore[arg-type]


def test_the_same_patient_always_lands_in_the_same_arm() -> None:
    arms = {assign_arm("pilot-1", "clinic-a:p-7", 0.3) for _ in range(5)}
    assert len(arms) == 1
    assert assignment_point("pilot-1", "clinic-a:p-7") == assignment_point(
        "pilot-1", "clinic-a:p-7"
    )


def test_assignment_is_sha256_of_the_pilot_and_the_patient() -> None:
    import hashlib

    digest = hashlib.sha256(b"pilot-1|clinic-a:p-7").digest()
    assert assignment_point("pilot-1", "clinic-a:p-7") == int.from_bytes(digest[:8], "big") / 2**64


@pytest.mark.parametrize("share", [0.1, 0.2, 0.5])
def test_the_holdout_is_close_to_the_asked_share(share: float) -> None:
    n = 4000
    held = sum(assign_arm("pilot-x", f"clinic-a:p-{i}", share) is Arm.holdout for i in range(n))
    assert abs(held / n - share) < 0.03


def test_a_different_pilot_reshuffles_the_patients() -> None:
    keys = [f"clinic-a:p-{i}" for i in range(200)]
    first = [assign_arm("pilot-1", k, 0.5) for k in keys]
    second = [assign_arm("pilot-2", k, 0.5) for k in keys]
    assert first != second


def test_no_holdout_share_means_everyone_gets_outreach() -> None:
    assert all(assign_arm("p", f"c:{i}", 0.0) is Arm.outreach for i in range(100))


def test_a_pilot_enrols_only_after_its_launch_inside_its_window_and_cohort() -> None:
    draft = pilot()
    assert not draft.enrolling(T0) and not draft.owns(T0)
    running = pilots.start(draft, T0)
    assert running.status is PilotStatus.running and running.ends_at == T0 + timedelta(days=30)
    assert running.owns(T0) and not running.enrolling(T0)  # week 1: define, nobody enrolled
    launched = pilots.launch(running, T0 + timedelta(days=2))
    assert launched.launched_at == T0 + timedelta(days=7)  # not before week 2 begins
    assert not launched.enrolling(T0 + timedelta(days=6, hours=23))
    day = [T0 + timedelta(days=d) for d in range(31)]
    assert launched.enrolling(day[7]) and launched.enrolling(day[29])
    assert not launched.enrolling(day[30]) and not launched.owns(day[30])
    late = pilots.launch(running, T0 + timedelta(days=9))
    assert late.launched_at == T0 + timedelta(days=9)
    full = replace(launched, cohort_size=3, enrolled=3)
    assert full.owns(T0 + timedelta(days=8)) and not full.enrolling(T0 + timedelta(days=8))
    closed = pilots.close(launched, T0 + timedelta(days=10))
    assert not closed.enrolling(day[10]) and not closed.owns(day[10])
    with pytest.raises(ValueError, match="draft"):
        pilots.start(running, T0)
    with pytest.raises(ValueError, match="already been launched"):
        pilots.launch(launched, T0 + timedelta(days=8))
    with pytest.raises(ValueError, match="no time left"):
        pilots.launch(pilots.start(pilot(days=8), T0), T0 + timedelta(days=8))
    with pytest.raises(ValueError, match="days > 7"):
        pilots.start(pilot(days=7), T0)
    with pytest.raises(ValueError, match="running"):
        pilots.close(closed, T0)


def test_the_weeks_and_phases_count_from_the_first_day_of_the_define_week() -> None:
    p = pilots.start(pilot(), T0)
    assert [p.week_of(T0 + timedelta(days=d)) for d in (0, 6, 7, 13, 14, 21, 29)] == [
        1, 1, 2, 2, 3, 4, 5,
    ]  # fmt: skip
    assert [p.phase_at(T0 + timedelta(days=d)) for d in (0, 7, 14, 21, 28)] == [
        Phase.define, Phase.launch, Phase.review, Phase.compare, Phase.follow_up,
    ]  # fmt: skip


def need(line: ServiceLine = ServiceLine.neurotoxin, **kw: object) -> NeedFacts:
    base: dict[str, object] = {
        "segment": Segment.cancelled_not_rescheduled,
        "service_line": line,
        "provider_id": "dr-1",
        "location_id": "loc-1",
        "urgency": ClinicalUrgency.routine,
        "due_on": T0.date(),
        "missed_reason": "schedule_conflict",
        "cancelled_by": Initiator.patient,
    }
    return NeedFacts(**{**base, **kw})  # type: ignore[arg-type]


COSMETIC = CohortFilters(service_lines=(ServiceLine.neurotoxin, ServiceLine.filler))


def test_the_pilot_holds_its_cohort_before_the_launch_and_once_the_group_is_full() -> None:
    running = pilots.start(pilot(cohort=COSMETIC, cohort_size=2), T0)
    week1 = pilots.consider(running, need(), "clinic-a:p-1", T0 + timedelta(days=1), None)
    assert week1 is not None and week1.verdict is Verdict.held and week1.arm is None
    assert week1.why[-1] == (
        "held until the launch decision: nobody in the cohort is messaged in week 1 (define)"
    )
    mohs = pilots.consider(running, need(ServiceLine.mohs), "clinic-a:p-2", T0, None)
    assert mohs is not None and mohs.verdict is Verdict.out
    other = replace(need(), segment=Segment.lapsed_patient)
    assert pilots.consider(running, other, "clinic-a:p-3", T0, None) is None
    launched = pilots.launch(running, T0)
    day8 = T0 + timedelta(days=8)
    taken = pilots.consider(launched, need(), "clinic-a:p-4", day8, None)
    assert taken is not None and taken.verdict is Verdict.enrolled and taken.counts
    assert taken.arm is assign_arm("pilot-1", "clinic-a:p-4", 0.2)
    full = replace(launched, enrolled=2)
    held = pilots.consider(full, need(), "clinic-a:p-5", day8, None)
    assert held is not None and held.verdict is Verdict.held
    assert held.why[-1] == "held: the launch group is full (2)"
    again = pilots.consider(full, need(), "clinic-a:p-4", day8, Arm.holdout)
    assert again is not None and again.verdict is Verdict.enrolled and not again.counts
    assert again.arm is Arm.holdout  # a patient already in the cohort keeps the recorded arm
    assert pilots.consider(launched, need(), "clinic-a:p-6", T0 + timedelta(days=30), None) is None


def test_only_an_exclusive_running_pilot_holds_what_no_pilot_took() -> None:
    plain = pilots.start(pilot(), T0)
    assert pilots.exclusive_hold([plain], T0) is None
    only = pilots.start(pilot(pilot_id="only", exclusive=True), T0)
    held = pilots.exclusive_hold([plain, only], T0 + timedelta(days=1))
    assert held is not None and held.pilot_id == "only" and held.verdict is Verdict.exclusive
    assert pilots.exclusive_hold([only], T0 + timedelta(days=30)) is None


DEFINE_ITEMS = [key for key, _ in pilot_phases.CHECKLISTS[Phase.define]]


def test_each_week_takes_its_own_decisions_and_launch_needs_the_whole_checklist() -> None:
    p = pilots.start(pilot(), T0)
    day2 = T0 + timedelta(days=2)
    decided = pilot_phases.check_decision(p, 1, "launch", DEFINE_ITEMS, day2)
    assert (decided.phase, decided.checked) == (Phase.define, tuple(DEFINE_ITEMS))
    with pytest.raises(ValueError, match="missing: escalation_route, holdout"):
        pilot_phases.check_decision(p, 1, "launch", ["eligibility", "words"], day2)
    with pytest.raises(ValueError, match=r"week 1 \(define\) ends with one of: launch, adjust"):
        pilot_phases.check_decision(p, 1, "continue", [], day2)
    with pytest.raises(ValueError, match="week 3 has not begun: the pilot is in week 1"):
        pilot_phases.check_decision(p, 3, "continue", [], day2)
    with pytest.raises(ValueError, match="no checklist item objections"):
        pilot_phases.check_decision(p, 1, "adjust", ["objections"], day2)
    with pytest.raises(ValueError, match="start the pilot first"):
        pilot_phases.check_decision(pilot(), 1, "adjust", [], T0)
    with pytest.raises(ValueError, match="already been launched"):
        pilot_phases.check_decision(pilots.launch(p, day2), 1, "launch", DEFINE_ITEMS, day2)
    week4 = T0 + timedelta(days=22)
    assert pilot_phases.check_decision(p, 4, "adjust", ["holdout"], week4).checked == ("holdout",)
    with pytest.raises(ValueError, match="expand needs every item of week 4"):
        pilot_phases.check_decision(p, 4, "expand", ["holdout"], week4)
    every = {d for ds in pilot_phases.DECISIONS.values() for d in ds}
    assert every == set(get_args(DecisionWord))  # the API accepts exactly these words


def test_the_phases_show_each_weeks_checklist_what_was_confirmed_and_the_decisions() -> None:
    p = pilots.start(pilot(), T0)
    reviews = [
        {"week": 1, "decision": "launch", "note": "", "reviewed_by": "a", "reviewed_at": "t1",
         "checklist": DEFINE_ITEMS},
        {"week": 2, "decision": "continue", "note": "ok", "reviewed_by": "b", "reviewed_at": "t2",
         "checklist": ["first_messages"]},
    ]  # fmt: skip
    shown = pilot_phases.phases(p, reviews, T0 + timedelta(days=8))
    assert [w["phase"] for w in shown] == ["define", "launch", "review", "compare"]
    assert [w["current"] for w in shown] == [False, True, False, False]
    assert all(item["confirmed"] for item in shown[0]["checklist"])
    confirmed = {i["item"]: i["confirmed"] for i in shown[1]["checklist"]}
    assert confirmed == {"first_messages": True, "replies_answered": False, "opt_outs": False}
    assert [d["decision"] for d in shown[1]["decisions"]] == ["continue"]
    assert shown[2]["decisions"] == []


def test_the_review_counts_facts_per_week_and_arm() -> None:
    p = pilots.start(pilot(), T0 - timedelta(days=7))  # the define week came first
    facts = [
        ("outreach", "started:outreach", T0),
        ("holdout", "started:holdout", T0 + timedelta(hours=1)),
        ("outreach", "step_commanded", T0),
        ("outreach", "message_sent", T0),
        ("outreach", "reply:later", T0 + timedelta(days=2)),
        ("outreach", "barrier:timing", T0 + timedelta(days=2)),
        ("outreach", "reply:decline", T0 + timedelta(days=8)),
        ("outreach", "stopped:declined", T0 + timedelta(days=8)),
        ("holdout", "stopped:booked", T0 + timedelta(days=9)),
    ]
    weeks = pilots.review(p, facts)
    one, two = weeks[2], weeks[3]
    assert one["outreach"].as_dict()["enrolled"] == 1
    assert one["outreach"].as_dict()["messages_sent"] == 1
    assert one["outreach"].as_dict()["reply_intents"] == {"later": 1}
    assert one["outreach"].as_dict()["barriers"] == {"timing": 1}
    assert two["outreach"].as_dict()["declined"] == 1
    assert two["holdout"].as_dict()["booked"] == 1
    assert two["holdout"].as_dict()["stops"] == {"booked": 1}
