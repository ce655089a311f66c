"""Properties: arrival order and redelivery never change the outcome; no rule invents a reason,
copies staff-only text or raises urgency."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.segmenter.domain import PatientState, decide_batch, evaluate, findings_of
from shared.events import Envelope
from shared.events.common import ClinicalUrgency
from shared.events.ehr import (
    FollowUpRecommended,
    TreatmentRecommended,
)
from shared.events.eligibility import PatientBecameEligible
from tests.segmenter.factory import PARAMS, Ehr, random_chart

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
ehr = Ehr("clinic-p:pt-prop")


@st.composite
def chart(draw: st.DrawFn) -> list[Envelope[Any]]:
    return random_chart(draw(st.randoms(use_true_random=False)), ehr)


def outcome(state: PatientState) -> tuple[Any, ...]:
    primary = state.primary
    return (
        state.journey,
        state.live,
        primary.need_id if primary else None,
        state.recovery_hold,
    )


def one_by_one(events: list[Envelope[Any]], now: datetime) -> PatientState:
    state = PatientState.new(ehr.patient_key)
    for e in events:
        state, _ = decide_batch(state, [e], now, PARAMS)
    return state


# SEGMENTER_EXAMPLES=2000 for a deeper run than the suite's quick one.
SETTINGS = settings(
    max_examples=int(os.environ.get("SEGMENTER_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(chart(), st.randoms(use_true_random=False))
def test_any_arrival_order_or_redelivery_gives_the_same_memberships(
    events: list[Envelope[Any]], rnd: Any
) -> None:
    expected, _ = decide_batch(PatientState.new(ehr.patient_key), events, NOW, PARAMS)
    shuffled = list(events)
    rnd.shuffle(shuffled)
    redelivered = shuffled + [rnd.choice(events) for _ in range(min(3, len(events)))]
    rnd.shuffle(redelivered)
    assert outcome(one_by_one(shuffled, NOW)) == outcome(expected)
    assert outcome(one_by_one(redelivered, NOW)) == outcome(expected)


@SETTINGS
@given(chart(), st.integers(1, 400))
def test_time_passing_is_the_same_as_evaluating_later_from_scratch(
    events: list[Envelope[Any]], later_days: int
) -> None:
    earlier, _ = decide_batch(PatientState.new(ehr.patient_key), events, NOW, PARAMS)
    then = NOW + timedelta(days=later_days)
    moved, _ = evaluate(earlier, then, PARAMS)
    # The one memory time does not erase: a recovery case once raised stays until resolved.
    start = replace(PatientState.new(ehr.patient_key), raised=earlier.raised)
    fresh, _ = decide_batch(start, events, then, PARAMS)
    assert outcome(moved) == outcome(fresh)


@SETTINGS
@given(chart())
def test_no_eligibility_carries_staff_text_or_more_urgency_than_documented(
    events: list[Envelope[Any]],
) -> None:
    staff_texts = {t for e in events for t in (getattr(e.payload, "reason_text", None),) if t}
    documented = {}
    for e in events:
        p = e.payload
        if isinstance(p, FollowUpRecommended):
            documented[p.follow_up_id] = p.urgency
        if isinstance(p, TreatmentRecommended):
            documented[p.recommendation_id] = p.urgency
    state = PatientState.new(ehr.patient_key)
    emitted = []
    for e in events:
        state, out = decide_batch(state, [e], NOW, PARAMS)
        emitted += [p for p in out if isinstance(p, PatientBecameEligible)]
    for eligible in emitted:
        assert not any(text in eligible.reason for text in staff_texts)
    for f in findings_of(state.journey, PARAMS):
        assert not any(text in f.reason for text in staff_texts)
        ceiling = documented.get(f.source.id, ClinicalUrgency.routine)
        assert f.urgency.rank <= ceiling.rank


@SETTINGS
@given(chart())
def test_eligibility_ids_are_derived_from_the_patient_segment_and_source_only(
    events: list[Envelope[Any]],
) -> None:
    first = {f.need_id: (f.segment, f.source) for f in findings_of(_journey(events), PARAMS)}
    again = {f.need_id: (f.segment, f.source) for f in findings_of(_journey(events), PARAMS)}
    assert first == again
    other = Ehr("clinic-p:pt-other")
    moved = [other.event(e.payload) for e in events]
    if events:
        assert not set(first) & {f.need_id for f in findings_of(_journey(moved), PARAMS)}


def _journey(events: list[Envelope[Any]]) -> Any:
    key = events[0].patient_key if events else ehr.patient_key
    state, _ = decide_batch(PatientState.new(key), events, NOW, PARAMS)
    return state.journey
