"""Pilot assignment (deterministic, close to the asked share), its life, and the weekly review."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.sequencer.domain import pilots
from services.sequencer.domain.pilots import Pilot, PilotStatus, assign_arm, assignment_point
from shared.events.common import Segment
from shared.events.outreach import Arm
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


def test_a_pilot_enrols_only_while_running_inside_its_window_and_cohort() -> None:
    draft = pilot()
    assert not draft.enrolling(T0)
    running = pilots.start(draft, T0)
    assert running.status is PilotStatus.running and running.ends_at == T0 + timedelta(days=30)
    assert running.enrolling(T0) and running.enrolling(T0 + timedelta(days=29))
    assert not running.enrolling(T0 + timedelta(days=30))
    assert not pilot(
        cohort_size=3,
        enrolled=3,
        status=PilotStatus.running,
        starts_at=T0,
        ends_at=T0 + timedelta(days=30),
    ).enrolling(T0)
    closed = pilots.close(running, T0 + timedelta(days=3))
    assert not closed.enrolling(T0 + timedelta(days=3))
    with pytest.raises(ValueError, match="draft"):
        pilots.start(running, T0)
    with pytest.raises(ValueError, match="running"):
        pilots.close(closed, T0)


def test_the_review_counts_facts_per_week_and_arm() -> None:
    p = pilots.start(pilot(), T0)
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
    one, two = weeks[1], weeks[2]
    assert one["outreach"].as_dict()["enrolled"] == 1
    assert one["outreach"].as_dict()["messages_sent"] == 1
    assert one["outreach"].as_dict()["reply_intents"] == {"later": 1}
    assert one["outreach"].as_dict()["barriers"] == {"timing": 1}
    assert two["outreach"].as_dict()["declined"] == 1
    assert two["holdout"].as_dict()["booked"] == 1
    assert two["holdout"].as_dict()["stops"] == {"booked": 1}
