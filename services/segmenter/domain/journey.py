"""A patient's care journey: the records the segmenter has seen (``records.py``) and the
typed views of them that the rules read (appointments with their status, visits with the
services they covered, follow-ups, plans, consult recommendations, questions, feedback).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.segmenter.domain.cached import cached
from services.segmenter.domain.records import Record, RecordKind, merge, record_of
from shared.events import Envelope
from shared.events.common import ServiceLine
from shared.events.ehr import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentKept,
    AppointmentNoShow,
    AppointmentRescheduled,
    CancellationReason,
    FollowUpRecommended,
    PatientUpserted,
    TreatmentPlanUpdated,
    TreatmentRecommended,
    VisitCompleted,
)
from shared.events.escalations import EscalationResolved

# Each cached view and the record kinds it is built from.
_VIEWS: dict[str, frozenset[RecordKind]] = {
    "patient": frozenset({RecordKind.patient}),
    "appointments": frozenset({RecordKind.appointment}),
    "_appointments_by_id": frozenset({RecordKind.appointment}),
    "visits": frozenset({RecordKind.visit, RecordKind.appointment}),
    "_visits_by_id": frozenset({RecordKind.visit, RecordKind.appointment}),
    "follow_ups": frozenset({RecordKind.follow_up}),
    "plans": frozenset({RecordKind.treatment_plan}),
    "recommendations": frozenset({RecordKind.treatment_recommendation}),
    "questions": frozenset({RecordKind.question}),
    "feedback": frozenset({RecordKind.feedback}),
    "resolutions": frozenset({RecordKind.resolution}),
}

__all__ = ["Appointment", "AppointmentStatus", "Dated", "Journey", "Record", "RecordKind", "Visit"]


class AppointmentStatus(StrEnum):
    booked = "booked"
    kept = "kept"
    cancelled = "cancelled"
    no_show = "no_show"


_STATUS: dict[type, AppointmentStatus] = {
    AppointmentBooked: AppointmentStatus.booked,
    AppointmentRescheduled: AppointmentStatus.booked,
    AppointmentKept: AppointmentStatus.kept,
    AppointmentNoShow: AppointmentStatus.no_show,
    AppointmentCancelled: AppointmentStatus.cancelled,
}


# --- typed views the rules read ---------------------------------------------------------------


@dataclass(frozen=True)
class Appointment:
    appointment_id: str
    status: AppointmentStatus
    start: datetime
    service_line: ServiceLine
    provider_id: str | None
    location_id: str | None
    plan_id: str | None
    changed_at: datetime  # when the current status was recorded in the EHR
    cancelled_by: str | None = None
    reason_code: CancellationReason | None = None
    staff_note: str | None = None  # StaffOnlyText: explain API only

    @property
    def active(self) -> bool:
        return self.status in (AppointmentStatus.booked, AppointmentStatus.kept)

    @property
    def missed(self) -> bool:
        return self.status in (AppointmentStatus.cancelled, AppointmentStatus.no_show)

    @property
    def missed_at(self) -> datetime:
        """When the cancellation was recorded; a no-show cannot be known before the start."""
        if self.status is AppointmentStatus.no_show:
            return max(self.start, self.changed_at)
        return self.changed_at


@dataclass(frozen=True)
class Visit:
    visit_id: str
    appointment_id: str | None
    completed_at: datetime
    provider_id: str | None
    location_id: str | None
    service_lines: frozenset[ServiceLine]
    primary_line: ServiceLine


@dataclass(frozen=True)
class Dated:
    """A record's payload with the time the EHR first recorded it."""

    payload: Any
    first_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Journey:
    patient_key: str
    records: Mapping[tuple[RecordKind, str], Record] = field(default_factory=dict)
    # Rule results, handed from one version of the journey to the next with a token per record
    # kind that changes when a record of that kind does: a rule whose kinds kept their tokens
    # is not re-run (see rules.evaluate_all).
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    base: object = field(default_factory=object, compare=False, repr=False)
    tokens: Mapping[RecordKind, object] = field(default_factory=dict, compare=False, repr=False)

    def token(self, kind: RecordKind) -> object:
        return self.tokens.get(kind, self.base)

    def apply(self, event: Envelope[Any]) -> tuple[Journey, bool]:
        """The journey with ``event`` merged in, and whether anything changed."""
        incoming = record_of(event)
        if incoming is None:
            return self, False
        key = (incoming.kind, incoming.record_id)
        existing = self.records.get(key)
        merged = merge(existing, incoming)
        if merged == existing:
            return self, False
        tokens = {**self.tokens, incoming.kind: object()}
        records = {**self.records, key: merged}
        journey = Journey(self.patient_key, records, self.memo, self.base, tokens)
        # Views of record kinds this event did not touch are still valid: hand them over.
        for view, kinds in _VIEWS.items():
            if incoming.kind not in kinds and view in self.__dict__:
                journey.__dict__[view] = self.__dict__[view]
        return journey, True

    @cached
    def _by_kind(self) -> dict[RecordKind, list[Record]]:
        grouped: dict[RecordKind, list[Record]] = {}
        for (kind, _), record in sorted(self.records.items()):
            grouped.setdefault(kind, []).append(record)
        return grouped

    def of_kind(self, kind: RecordKind) -> list[Record]:
        return self._by_kind.get(kind, [])

    @cached
    def patient(self) -> PatientUpserted | None:
        record = self.records.get((RecordKind.patient, "patient"))
        return record.payload if record is not None else None

    @property
    def deceased(self) -> bool:
        return self.patient is not None and self.patient.deceased

    @property
    def inactive(self) -> bool:
        return self.patient is not None and not self.patient.active

    @cached
    def appointments(self) -> list[Appointment]:
        out = []
        for r in self.of_kind(RecordKind.appointment):
            p = r.payload
            cancelled = isinstance(p, AppointmentCancelled)
            out.append(
                Appointment(
                    appointment_id=p.appointment_id,
                    status=_STATUS[type(p)],
                    start=p.start,
                    service_line=p.service_line,
                    provider_id=p.provider_id,
                    location_id=p.location_id,
                    plan_id=p.treatment_plan_id,
                    changed_at=r.stamp.updated_at,
                    cancelled_by=p.cancelled_by.value if cancelled else None,
                    reason_code=p.reason_code if cancelled else None,
                    staff_note=p.reason_text if cancelled else None,
                )
            )
        return sorted(out, key=lambda a: (a.start, a.appointment_id))

    @cached
    def visits(self) -> list[Visit]:
        by_id = {a.appointment_id: a for a in self.appointments}
        out = []
        for r in self.of_kind(RecordKind.visit):
            p: VisitCompleted = r.payload
            lines = [s.service_line for s in p.services]
            booked = by_id.get(p.appointment_id) if p.appointment_id else None
            if booked is not None:
                # Billing says what was done, the booking what it was for: either covers a need.
                lines.append(booked.service_line)
            primary = lines[0] if lines else ServiceLine.general_dermatology
            out.append(
                Visit(
                    visit_id=p.visit_id,
                    appointment_id=p.appointment_id,
                    completed_at=p.completed_at,
                    provider_id=p.provider_id,
                    location_id=p.location_id,
                    service_lines=frozenset(lines),
                    primary_line=primary,
                )
            )
        return sorted(out, key=lambda v: (v.completed_at, v.visit_id))

    def dated(self, kind: RecordKind) -> list[Dated]:
        return [Dated(r.payload, r.first_at, r.stamp.updated_at) for r in self.of_kind(kind)]

    @cached
    def follow_ups(self) -> list[FollowUpRecommended]:
        return [r.payload for r in self.of_kind(RecordKind.follow_up)]

    @cached
    def plans(self) -> list[TreatmentPlanUpdated]:
        return [r.payload for r in self.of_kind(RecordKind.treatment_plan)]

    @cached
    def recommendations(self) -> list[TreatmentRecommended]:
        return [r.payload for r in self.of_kind(RecordKind.treatment_recommendation)]

    @cached
    def questions(self) -> list[Dated]:
        return self.dated(RecordKind.question)

    @cached
    def feedback(self) -> list[Dated]:
        return self.dated(RecordKind.feedback)

    @cached
    def resolutions(self) -> dict[str, EscalationResolved]:
        return {r.record_id: r.payload for r in self.of_kind(RecordKind.resolution)}

    @cached
    def _visits_by_id(self) -> dict[str, Visit]:
        return {v.visit_id: v for v in self.visits}

    @cached
    def _appointments_by_id(self) -> dict[str, Appointment]:
        return {a.appointment_id: a for a in self.appointments}

    def visit(self, visit_id: str | None) -> Visit | None:
        return self._visits_by_id.get(visit_id) if visit_id else None

    def plan(self, plan_id: str | None) -> TreatmentPlanUpdated | None:
        return next((p for p in self.plans if p.plan_id == plan_id), None) if plan_id else None

    def appointment(self, appointment_id: str | None) -> Appointment | None:
        return self._appointments_by_id.get(appointment_id) if appointment_id else None
