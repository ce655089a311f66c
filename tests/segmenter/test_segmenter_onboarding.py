"""While a practice's history loads, the segmenter finds and keeps needs but opens none; once
it is all in, one re-evaluation at that moment decides, so no stale or partial record of the
history ever starts outreach (the pure core; the service path is in test_segmenter_service)."""

from __future__ import annotations

from typing import Any

from services.segmenter.domain import PatientState
from services.segmenter.domain.memberships import HOLD_ONBOARDING
from services.segmenter.domain.params import ClinicParams
from shared.events import Envelope, Payload
from shared.events.common import Segment
from shared.events.common import ServiceLine as L
from shared.events.ehr import Sentiment
from shared.events.eligibility import PatientBecameEligible
from shared.events.escalations import EscalationRaised
from tests.segmenter.factory import PARAMS, Ehr, at, later, run

HOLDING = PARAMS.model_copy(
    update={"general": PARAMS.general.model_copy(update={"hold_outreach": True})}
)
ehr = Ehr()


def _opened(out: list[Payload]) -> list[Segment]:
    return [p.segment for p in out if isinstance(p, PatientBecameEligible)]


def _load(
    events: list[Envelope[Any]], now_text: str, params: ClinicParams = HOLDING
) -> tuple[PatientState, list[Payload]]:
    """The history arrives one event at a time (a backfill's worst case for partial history),
    read at 18:00 on ``now_text``."""
    return run(events, at(now_text, 18), params, one_by_one=True)


def test_a_due_need_found_while_holding_opens_only_when_the_hold_is_lifted() -> None:
    cancel = ehr.cancelled("a-1", at("2026-03-10"), L.skin_check, at("2026-03-01"))
    state, out = _load([cancel], "2026-03-01", HOLDING)
    assert _opened(out) == []
    [membership] = state.memberships.values()
    assert membership.hold_reason == HOLD_ONBOARDING
    state, out = later(state, at("2026-03-01", 19), PARAMS)
    assert _opened(out) == [Segment.cancelled_not_rescheduled]


def test_a_partial_history_never_makes_a_patient_look_lapsed() -> None:
    # Read in order, the first two visits alone look like a patient gone for 18 months; the
    # visit of last month, further down the history, says otherwise.
    events = [
        ehr.visit("v-1", at("2024-01-10"), L.skin_check),
        ehr.visit("v-2", at("2024-07-10"), L.acne),
        ehr.visit("v-3", at("2026-02-10"), L.acne),
    ]
    state, out = _load(events, "2026-03-01")
    assert _opened(out) == []
    _, out = later(state, at("2026-03-01", 19), PARAMS)
    assert Segment.lapsed_patient not in _opened(out)


def test_a_cancellation_from_three_years_ago_starts_nothing() -> None:
    cancel = ehr.cancelled("a-old", at("2023-02-10"), L.skin_check, at("2023-02-01"))
    state, out = _load([cancel], "2026-03-01")
    assert _opened(out) == []
    _, out = later(state, at("2026-03-01", 19), PARAMS)
    assert _opened(out) == []


def test_service_recovery_is_raised_after_the_history_not_during_it() -> None:
    events = [
        ehr.visit("v-1", at("2026-02-01"), L.skin_check),
        ehr.feedback("fb-1", at("2026-02-02"), Sentiment.poor, visit_id="v-1"),
    ]
    state, out = _load(events, "2026-03-01")
    assert not any(isinstance(p, EscalationRaised) for p in out)
    _, out = later(state, at("2026-03-01", 19), PARAMS)
    assert [type(p) for p in out if isinstance(p, EscalationRaised)] == [EscalationRaised]
