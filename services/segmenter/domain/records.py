"""Journey records: the latest version of each EHR record, whatever order versions arrive in.

For one record the event with the greatest (source time, source version, event-type rank,
content digest) wins, and ``first_at`` is the earliest time any version was seen. Both merges
are commutative and idempotent, so the same events in any order, or twice, give the same
records.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.events import Envelope, Payload
from shared.events.ehr import (
    AppointmentPayload,
    ExperienceFeedbackRecorded,
    FollowUpRecommended,
    PatientQuestionReceived,
    PatientUpserted,
    TreatmentPlanUpdated,
    TreatmentRecommended,
    VisitCompleted,
)
from shared.events.escalations import EscalationResolved


class RecordKind(StrEnum):
    patient = "patient"
    appointment = "appointment"
    visit = "visit"
    follow_up = "follow_up"
    treatment_plan = "treatment_plan"
    treatment_recommendation = "treatment_recommendation"
    question = "question"
    feedback = "feedback"
    resolution = "resolution"  # a service-recovery case closed by a person (escalations topic)


# Same record, same time, same version: the later step of an appointment's life wins the tie.
_TYPE_RANK = {
    "AppointmentBooked": 0,
    "AppointmentRescheduled": 1,
    "AppointmentKept": 2,
    "AppointmentNoShow": 3,
    "AppointmentCancelled": 4,
}

VersionKey = tuple[int, int, str]


def version_key(version: str | None) -> VersionKey:
    """A total order on source versions: none < numeric (by value) < other (by text)."""
    if version is None:
        return (0, 0, "")
    if version.isdigit():
        return (1, int(version), "")
    return (2, 0, version)


@dataclass(frozen=True)
class Stamp:
    """Which version of a record an event carries; greater wins."""

    updated_at: datetime
    version: str | None
    type_rank: int
    digest: str

    def key(self) -> tuple[datetime, VersionKey, int, str]:
        return (self.updated_at, version_key(self.version), self.type_rank, self.digest)


@dataclass(frozen=True)
class Record:
    kind: RecordKind
    record_id: str
    event_type: str
    stamp: Stamp
    first_at: datetime  # the earliest time any version of this record was seen
    payload: Any  # the winning event's typed payload
    raw: str | None = field(default=None, compare=False)  # its JSON, when already made


def _key_of(payload: Payload) -> tuple[RecordKind, str] | None:
    if isinstance(payload, PatientUpserted):
        return RecordKind.patient, "patient"
    if isinstance(payload, AppointmentPayload):
        return RecordKind.appointment, payload.appointment_id
    if isinstance(payload, VisitCompleted):
        return RecordKind.visit, payload.visit_id
    if isinstance(payload, FollowUpRecommended):
        return RecordKind.follow_up, payload.follow_up_id
    if isinstance(payload, TreatmentPlanUpdated):
        return RecordKind.treatment_plan, payload.plan_id
    if isinstance(payload, TreatmentRecommended):
        return RecordKind.treatment_recommendation, payload.recommendation_id
    if isinstance(payload, PatientQuestionReceived):
        return RecordKind.question, payload.question_id
    if isinstance(payload, ExperienceFeedbackRecorded):
        return RecordKind.feedback, payload.feedback_id
    if isinstance(payload, EscalationResolved):
        return RecordKind.resolution, payload.escalation_id
    return None  # e.g. ConsentChanged: the messenger's business, not a care need


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def record_of(event: Envelope[Any]) -> Record | None:
    """The journey record an event describes, or None when the segmenter does not track it."""
    payload = event.payload
    key = _key_of(payload)
    if key is None:
        return None
    if isinstance(payload, PatientUpserted):
        # Only whether the patient can be contacted about care, and their time zone (for quiet
        # hours, with the state of their address), matter here; names and contact details
        # stay with the messenger, which owns them.
        payload = PatientUpserted(
            source=payload.source,
            time_zone=payload.time_zone,
            home_state=payload.home_state,
            deceased=payload.deceased,
            active=payload.active,
        )
    source = getattr(payload, "source", None)
    updated_at = source.source_updated_at if source is not None else event.occurred_at
    raw = payload.model_dump_json()
    stamp = Stamp(
        updated_at=updated_at,
        version=source.source_version if source is not None else None,
        type_rank=_TYPE_RANK.get(event.type, 0),
        digest=digest(raw),
    )
    return Record(key[0], key[1], event.type, stamp, updated_at, payload, raw)


def merge(existing: Record | None, incoming: Record) -> Record:
    if existing is None:
        return incoming
    winner = incoming if incoming.stamp.key() > existing.stamp.key() else existing
    first_at = min(existing.first_at, incoming.first_at)
    return winner if winner.first_at == first_at else replace(winner, first_at=first_at)
