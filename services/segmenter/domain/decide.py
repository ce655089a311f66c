"""The segmenter's decision: given a patient's state and EHR events, the new state and events.

``decide(state, event, now, params)`` merges the event into the journey, runs every rule, then
reconciles memberships (who is in which segment, which one is primary) and service recovery.
Nothing here reads a clock or a database; the handler passes "now" and saves the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.segmenter.domain.findings import Ending, Finding
from services.segmenter.domain.journey import Journey
from services.segmenter.domain.memberships import (
    Context,
    Membership,
    next_transition,
    reconcile,
)
from services.segmenter.domain.params import ClinicParams
from services.segmenter.domain.recovery import Recovery, assess
from services.segmenter.domain.rules import RULES, evaluate_all
from shared.events import Envelope, Payload
from shared.events.eligibility import LeftReason


@dataclass(frozen=True)
class PatientState:
    patient_key: str
    journey: Journey
    memberships: Mapping[str, Membership] = field(default_factory=dict)
    raised: frozenset[str] = frozenset()  # service-recovery escalations already raised
    recovery_hold: bool = False

    @classmethod
    def new(cls, patient_key: str) -> PatientState:
        return cls(patient_key, Journey(patient_key))

    def with_journey(self, journey: Journey) -> PatientState:
        return PatientState(
            self.patient_key, journey, self.memberships, self.raised, self.recovery_hold
        )

    @property
    def clinic_id(self) -> str:
        return self.patient_key.partition(":")[0]

    @property
    def next_transition_at(self) -> datetime | None:
        return next_transition(self.memberships)

    @property
    def live(self) -> dict[str, str]:
        """need id -> status of every membership not closed (what "being in" means)."""
        return {k: m.status.value for k, m in sorted(self.memberships.items()) if m.live}

    @property
    def primary(self) -> Membership | None:
        return next((m for m in self.memberships.values() if m.status.value == "open"), None)


def findings_of(journey: Journey, params: ClinicParams) -> list[Finding]:
    return [f for result in evaluate_all(journey, params).values() for f in result.findings]


def _patient_gone(journey: Journey) -> Ending | None:
    if journey.deceased:
        return Ending(LeftReason.deceased, None, "the patient is recorded as deceased")
    if journey.inactive:
        return Ending(LeftReason.patient_inactive, None, "the patient record is inactive")
    return None


def evaluate(
    state: PatientState, now: datetime, params: ClinicParams
) -> tuple[PatientState, list[Payload]]:
    """Re-run the rules on the journey as it is and reconcile memberships at ``now``."""
    journey = state.journey
    recovery: Recovery | None = assess(journey, params, now, state.raised)
    hold = recovery is not None and recovery.active
    onboarding = params.general.hold_outreach
    raised = state.raised
    escalations: list[Payload] = []
    # While the history loads, a service-recovery case waits too: raised at the end if due.
    if recovery is not None and hold and not onboarding and recovery.escalation_id not in raised:
        escalations.append(recovery.raised_event(params))
        raised = raised | {recovery.escalation_id}
    ctx = Context(
        now=now,
        params=params,
        gone=lambda m: RULES[m.segment].gone(m.source, journey),
        patient_gone=_patient_gone(journey),
        recovery_hold=hold,
        onboarding_hold=onboarding,
    )
    memberships, moves = reconcile(state.memberships, findings_of(journey, params), ctx)
    new_state = PatientState(state.patient_key, journey, memberships, raised, hold)
    return new_state, [*escalations, *moves]


def decide_batch(
    state: PatientState, events: Iterable[Envelope[Any]], now: datetime, params: ClinicParams
) -> tuple[PatientState, list[Payload]]:
    """Merge several events of one patient, then decide once (what a consumer batch does)."""
    journey = state.journey
    for event in events:
        journey, _ = journey.apply(event)
    return evaluate(state.with_journey(journey), now, params)


def decide(
    state: PatientState, event: Envelope[Any], now: datetime, params: ClinicParams
) -> tuple[PatientState, list[Payload]]:
    return decide_batch(state, (event,), now, params)
