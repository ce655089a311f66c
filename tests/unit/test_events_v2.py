"""The second versions of SendStep, PatientBecameEligible, PatientUpserted and
TreatmentPlanUpdated, and the upcasters that keep their first versions readable."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from shared.events import EventError, parse_event
from shared.events.eligibility import Documented, PatientBecameEligible, ReasonSource
from shared.events.outreach import SendStep
from shared.outreach_policy import DEFAULT_POLICY

T0 = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


def wire(event_type: str, version: int, payload: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "event_id": "6f1c1c1e-0000-4000-8000-000000000001",
            "type": event_type,
            "version": version,
            "occurred_at": T0.isoformat(),
            "clinic_id": "c1",
            "patient_key": "c1:p1",
            "payload": payload,
        }
    ).encode()


COMMAND_V1 = {
    "sequence_id": "seq-1",
    "step": 1,
    "workflow_key": "chronic_review",
    "template_key": "chronic_review.1",
    "channel": "sms",
    "purpose": "care",
    "clinical_urgency": "routine",
    "segment": "chronic_review_overdue",
    "service_line": "psoriasis_eczema",
    "not_before": T0.isoformat(),
    "expires_at": (T0 + timedelta(days=1)).isoformat(),
    "due_on": "2026-02-01",
}


def test_a_version_one_send_step_is_read_without_a_guessed_source() -> None:
    event = parse_event(wire("SendStep", 1, COMMAND_V1))
    cmd = event.payload
    assert isinstance(cmd, SendStep) and event.version == 2
    # A bare due date says nothing of its source: it is not carried over, so the words that
    # would need it are refused rather than guessed at.
    assert (cmd.documented, cmd.overdue) == (None, None)
    assert cmd.policy == DEFAULT_POLICY and cmd.time_zone is None


def test_a_send_step_carries_what_was_documented_and_whether_it_is_overdue() -> None:
    documented = Documented(
        source=ReasonSource.surveillance_plan, recorded_on=date(2025, 8, 1), due_on=date(2026, 2, 1)
    )
    body = {k: v for k, v in COMMAND_V1.items() if k != "due_on"}
    cmd = SendStep.model_validate(
        {**body, "documented": documented.model_dump(mode="json"), "overdue": True}
    )
    again = parse_event(wire("SendStep", 2, cmd.model_dump(mode="json"))).payload
    assert again == cmd
    with pytest.raises(EventError, match="overdue is given exactly when"):
        parse_event(wire("SendStep", 2, {**body, "overdue": True}))
    with pytest.raises(EventError, match="overdue is given exactly when"):
        parse_event(wire("SendStep", 2, {**body, "documented": documented.model_dump(mode="json")}))


ELIGIBLE_V1 = {
    "eligibility_id": "cnr-1",
    "segment": "cancelled_not_rescheduled",
    "kind": "reactivation",
    "service_line": "acne",
    "reason": "Acne appointment on 2026-03-10 was cancelled; nothing is booked to replace it",
    "source_record": {"kind": "appointment", "id": "a-1"},
    "due_at": T0.isoformat(),
    "needs_marketing_consent": False,
}


def test_a_version_one_eligibility_is_read_with_nothing_documented() -> None:
    event = parse_event(wire("PatientBecameEligible", 1, ELIGIBLE_V1))
    assert isinstance(event.payload, PatientBecameEligible) and event.version == 2
    assert (event.payload.documented, event.payload.home_state) == (None, None)


def test_an_eligibility_refuses_a_source_it_does_not_know_and_a_bad_state() -> None:
    bad = {**ELIGIBLE_V1, "documented": {"source": "hunch", "recorded_on": "2026-03-10"}}
    with pytest.raises(EventError, match=r"documented\.source"):
        parse_event(wire("PatientBecameEligible", 2, bad))
    with pytest.raises(EventError, match="home_state"):
        parse_event(wire("PatientBecameEligible", 2, {**ELIGIBLE_V1, "home_state": "Texas"}))


def test_old_patients_and_plans_are_read_with_no_state_and_no_purpose() -> None:
    source = {"system": "json", "record_id": "r-1", "source_updated_at": T0.isoformat()}
    patient = parse_event(wire("PatientUpserted", 1, {"source": source, "given_name": "Ana"}))
    assert patient.version == 3 and patient.payload.home_state is None
    plan = {
        "source": source,
        "plan_id": "pl-1",
        "service_line": "laser",
        "sessions_planned": 5,
        "sessions_completed": 0,
        "interval_days": 35,
    }
    read = parse_event(wire("TreatmentPlanUpdated", 1, plan))
    assert read.version == 2 and read.payload.purpose is None
    medical = parse_event(wire("TreatmentPlanUpdated", 2, {**plan, "purpose": "care"}))
    assert medical.payload.purpose.value == "care"
