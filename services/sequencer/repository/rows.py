"""Rows of the sequencer's tables as the pure core's state, and back."""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from typing import Any

from services.sequencer.domain.model import Patient, Send, Sequence, State
from shared.events.common import ClinicalUrgency, Purpose, Segment, SegmentKind, ServiceLine
from shared.events.eligibility import Documented
from shared.events.outreach import Arm, StopReason

# The sequences table's columns: the Sequence fields plus clinic_id (derived from the key).
SEQ_COLS = (
    "sequence_id",
    "patient_key",
    "clinic_id",
    "eligibility_id",
    "segment",
    "kind",
    "service_line",
    "workflow_key",
    "purpose",
    "urgency",
    "provider_id",
    "location_id",
    "steps_planned",
    "steps_sent",
    "state",
    "stop_reason",
    "needs_marketing_consent",
    "reason",
    "time_zone",
    "home_state",
    "documented",
    "reminder_key",
    "next_step",
    "next_due",
    "armed",
    "snoozed_until",
    "closes_at",
    "pilot_id",
    "arm",
    "failures",
    "started_at",
    "closed_at",
    "correlation_id",
)
# What a decision can change on an existing sequence.
STATE_COLS = (
    "steps_sent",
    "state",
    "stop_reason",
    "time_zone",
    "home_state",
    "next_step",
    "next_due",
    "armed",
    "snoozed_until",
    "closes_at",
    "failures",
    "closed_at",
    "correlation_id",
)
_SEGMENT = {m.value: m for m in Segment}
_KIND = {m.value: m for m in SegmentKind}
_LINE = {m.value: m for m in ServiceLine}
_PURPOSE = {m.value: m for m in Purpose}
_URGENCY = {m.value: m for m in ClinicalUrgency}
_STATE = {m.value: m for m in State}
_STOP = {m.value: m for m in StopReason}
_ARM = {m.value: m for m in Arm}


def row_to_sequence(m: Any) -> Sequence:
    stop = m["stop_reason"]
    values = {c: m[c] for c in SEQ_COLS if c != "clinic_id"}
    values.update(
        segment=_SEGMENT[values["segment"]],
        kind=_KIND[values["kind"]],
        service_line=_LINE[values["service_line"]],
        purpose=_PURPOSE[values["purpose"]],
        urgency=_URGENCY[values["urgency"]],
        state=_STATE[values["state"]],
        stop_reason=_STOP[stop] if stop else None,
        arm=_ARM[values["arm"]],
        documented=_documented(values["documented"]),
        reminder_key=values["reminder_key"] or "",
    )
    # Every field comes from the row (the columns are the dataclass's fields, checked by
    # test_a_sequence_survives_a_round_trip_through_its_row); skipping the frozen
    # dataclass's __init__ halves the cost of loading a batch.
    seq: Sequence = object.__new__(Sequence)
    seq.__dict__.update(values)
    return seq


def _documented(raw: Any) -> Documented | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return Documented.model_validate_json(raw)
    return Documented.model_validate(raw)


def value(v: Any) -> Any:
    if isinstance(v, Documented):
        return v.model_dump_json()
    return v.value if isinstance(v, Enum) else v


_EMPTY_JSON: dict[str, Any] = {"{}": {}, "[]": []}


def _jsonish(value: Any) -> Any:
    if isinstance(value, str):
        return _EMPTY_JSON[value] if value in _EMPTY_JSON else json.loads(value)
    return value


def row_to_patient(m: Any) -> Patient:
    raw_sends = _jsonish(m["sends"]) or []
    sends = tuple(Send(s[0], int(s[1]), datetime.fromisoformat(s[2])) for s in raw_sends)
    return Patient(
        patient_key=m["patient_key"],
        time_zone=m["time_zone"],
        home_state=m["home_state"],
        closed_reminders=frozenset(m["closed_reminders"] or ()),
        opt_outs=frozenset(m["opt_outs"] or ()),
        escalations=dict(_jsonish(m["escalations"]) or {}),
        operator_paused=m["operator_paused"],
        sends=sends,
        rest_until=m["rest_until"],
    )
