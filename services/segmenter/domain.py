"""Pure rules of the segmenter (walking-skeleton scope: cancelled_not_rescheduled).

A patient who cancelled or missed an appointment, and has nothing booked to replace it, has an
unfinished care need. The need is documented by the appointment itself, so the reason names the
appointment's service and date, never a diagnosis, and the urgency stays routine.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.events import Envelope, Payload
from shared.events.common import (
    ClinicalUrgency,
    Segment,
    SegmentKind,
    ServiceLine,
    SourceRecord,
    SourceRecordKind,
)
from shared.events.ehr import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentNoShow,
    AppointmentRescheduled,
    PatientUpserted,
    VisitCompleted,
)
from shared.events.eligibility import LeftReason, PatientBecameEligible, PatientLeftSegment


@dataclass(frozen=True)
class Need:
    """One open (or closed) membership of a patient in a segment."""

    eligibility_id: str
    patient_key: str
    segment: Segment
    service_line: ServiceLine
    source_kind: SourceRecordKind
    source_id: str
    opened_at: datetime
    closed_reason: LeftReason | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_reason is None


def _service_words(line: ServiceLine) -> str:
    return line.value.replace("_", " ")


def decide(
    needs: list[Need], event: Envelope[Any], now: datetime
) -> tuple[list[Need], list[Payload]]:
    """Given a patient's needs and one EHR event: the needs that changed and what to emit."""
    payload = event.payload
    if isinstance(payload, AppointmentCancelled | AppointmentNoShow):
        return _missed(needs, event, payload)
    if isinstance(payload, AppointmentBooked | AppointmentRescheduled):
        return _close(needs, LeftReason.booked, payload.service_line, payload.start, _appt(payload))
    if isinstance(payload, VisitCompleted):
        lines = {s.service_line for s in payload.services}
        changed: list[Need] = []
        emitted: list[Payload] = []
        for line in lines:
            c, e = _close(
                needs,
                LeftReason.visit_completed,
                line,
                payload.completed_at,
                SourceRecord(kind=SourceRecordKind.visit, id=payload.visit_id),
            )
            changed += c
            emitted += e
        return changed, emitted
    if isinstance(payload, PatientUpserted) and (payload.deceased or not payload.active):
        reason = LeftReason.deceased if payload.deceased else LeftReason.patient_inactive
        return _close(needs, reason, None, None, None)
    return [], []


def _appt(payload: AppointmentBooked | AppointmentRescheduled) -> SourceRecord:
    return SourceRecord(kind=SourceRecordKind.appointment, id=payload.appointment_id)


def _missed(
    needs: list[Need], event: Envelope[Any], payload: AppointmentCancelled | AppointmentNoShow
) -> tuple[list[Need], list[Payload]]:
    eligibility_id = f"cnr:{event.patient_key}:{payload.appointment_id}"
    if any(n.eligibility_id == eligibility_id for n in needs):
        return [], []  # the same cancellation seen again (a corrected resend): one need only
    what = "cancelled" if isinstance(payload, AppointmentCancelled) else "missed"
    need = Need(
        eligibility_id=eligibility_id,
        patient_key=event.patient_key,
        segment=Segment.cancelled_not_rescheduled,
        service_line=payload.service_line,
        source_kind=SourceRecordKind.appointment,
        source_id=payload.appointment_id,
        opened_at=event.occurred_at,
    )
    eligible = PatientBecameEligible(
        eligibility_id=eligibility_id,
        segment=Segment.cancelled_not_rescheduled,
        kind=SegmentKind.reactivation,
        service_line=payload.service_line,
        reason=(
            f"{_service_words(payload.service_line).capitalize()} appointment on "
            f"{payload.start.date().isoformat()} was {what}; nothing is booked to replace it"
        ),
        source_record=SourceRecord(kind=SourceRecordKind.appointment, id=payload.appointment_id),
        due_at=event.occurred_at,
        clinical_urgency=ClinicalUrgency.routine,
        needs_marketing_consent=payload.service_line.is_cosmetic,
        provider_id=payload.provider_id,
        location_id=payload.location_id,
    )
    return [need], [eligible]


def _close(
    needs: list[Need],
    reason: LeftReason,
    line: ServiceLine | None,
    after: datetime | None,
    source: SourceRecord | None,
) -> tuple[list[Need], list[Payload]]:
    changed: list[Need] = []
    emitted: list[Payload] = []
    for need in needs:
        if not need.is_open or (line is not None and need.service_line != line):
            continue
        if after is not None and reason is LeftReason.visit_completed and after < need.opened_at:
            continue  # a visit before the cancellation does not replace it
        changed.append(replace(need, closed_reason=reason))
        emitted.append(
            PatientLeftSegment(
                eligibility_id=need.eligibility_id,
                segment=need.segment,
                kind=SegmentKind.reactivation,
                service_line=need.service_line,
                reason=reason,
                source_record=source,
            )
        )
    return changed, emitted
