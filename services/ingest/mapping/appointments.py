"""Appointment facts from either route -> the one appointment event they mean.

Whether a booking is new or a reschedule depends on what the EHR said before, so each
appointment's versions (source timestamp, start, status) are remembered by the shell and passed
in: a booking whose start differs from the latest earlier booked version is a reschedule. The
comparison is by the source's own timestamp, not by arrival, so an old version arriving late
is compared against what preceded it, not against something newer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.ingest.domain import Fact, Problem, Refused, build
from shared.events.common import EhrSource, Initiator, ServiceLine
from shared.events.ehr import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentKept,
    AppointmentNoShow,
    AppointmentRescheduled,
    CancellationReason,
)


class AppointmentStatus(StrEnum):
    proposed = "proposed"  # FHIR proposed/pending/waitlist, HL7 Pending/Waitlist: not booked
    booked = "booked"
    kept = "kept"  # FHIR arrived/checked-in/fulfilled, HL7 Started/Complete
    cancelled = "cancelled"
    noshow = "noshow"


@dataclass(frozen=True)
class AppointmentVersion:
    """What one version of an appointment said (the shell stores these)."""

    source_updated_at: datetime
    start: datetime | None
    status: AppointmentStatus


@dataclass(frozen=True)
class AppointmentFacts:
    """An appointment as a route read it; ``decide`` turns it into an event."""

    patient_id: str
    appointment_id: str
    status: AppointmentStatus
    start: datetime | None
    service_line: ServiceLine
    provider_id: str | None
    location_id: str | None
    source: EhrSource
    loc: str  # the source record, for a precise refusal ("Appointment", "SCH")
    start_loc: str  # where the start is read from
    duration_minutes: int | None = None
    treatment_plan_id: str | None = None
    cancelled_by: Initiator = Initiator.unknown
    reason_code: CancellationReason = CancellationReason.unknown
    reason_text: str | None = None
    arrived_at: datetime | None = None

    @property
    def key(self) -> str:
        """The appointment's identity within a clinic (ids of different routes never meet)."""
        return f"{self.source.system.value}:{self.appointment_id}"


def decide(
    facts: AppointmentFacts, history: Sequence[AppointmentVersion]
) -> tuple[Fact | None, AppointmentVersion]:
    """The event this version means (None for a proposal) and the version to remember."""
    at = facts.source.source_updated_at
    earlier = sorted((v for v in history if v.source_updated_at < at), key=_when)
    start = facts.start or next((v.start for v in reversed(earlier) if v.start), None)
    version = AppointmentVersion(at, start, facts.status)
    if facts.status is AppointmentStatus.proposed:
        return None, version
    if start is None:
        raise Refused(
            [Problem(facts.start_loc, "required: the appointment's start (no earlier version)")]
        )
    common = {
        "source": facts.source,
        "appointment_id": facts.appointment_id,
        "start": start,
        "service_line": facts.service_line,
        "provider_id": facts.provider_id,
        "location_id": facts.location_id,
        "duration_minutes": facts.duration_minutes,
        "treatment_plan_id": facts.treatment_plan_id,
    }
    payload: (
        AppointmentBooked
        | AppointmentRescheduled
        | AppointmentCancelled
        | AppointmentNoShow
        | AppointmentKept
    )
    if facts.status is AppointmentStatus.booked:
        prior = earlier[-1] if earlier else None
        moved = (
            prior is not None
            and prior.status is AppointmentStatus.booked
            and prior.start is not None
            and prior.start != start
        )
        if moved and prior is not None and prior.start is not None:
            payload = build(AppointmentRescheduled, facts.loc, **common, previous_start=prior.start)
        else:
            payload = build(AppointmentBooked, facts.loc, **common)
    elif facts.status is AppointmentStatus.cancelled:
        payload = build(
            AppointmentCancelled,
            facts.loc,
            **common,
            cancelled_by=facts.cancelled_by,
            reason_code=facts.reason_code,
            reason_text=facts.reason_text,
        )
    elif facts.status is AppointmentStatus.noshow:
        payload = build(AppointmentNoShow, facts.loc, **common)
    else:
        payload = build(AppointmentKept, facts.loc, **common, arrived_at=facts.arrived_at)
    return Fact(facts.patient_id, payload, at), version


def _when(version: AppointmentVersion) -> datetime:
    return version.source_updated_at


# FHIR appointment-cancellation-reason codes (HL7 terminology), also matched against HL7 v2
# SCH-6 event reasons: who cancelled, and the normalised reason.
_P, _PR, _U = Initiator.patient, Initiator.practice, Initiator.unknown
_R = CancellationReason
CANCELLATION_REASONS: dict[str, tuple[Initiator, CancellationReason]] = {
    "pat": (_P, _R.patient_request),
    "pat-crs": (_P, _R.patient_request),  # cancelled via an automated reminder
    "pat-cpp": (_P, _R.patient_request),  # cancelled via the patient portal
    "pat-dec": (_P, _R.other),  # deceased: PatientUpserted.deceased stops outreach
    "pat-fb": (_P, _R.feeling_better),
    "pat-lt": (_P, _R.transport),
    "pat-lt-ts": (_P, _R.transport),
    "pat-mt": (_P, _R.other),
    "pat-mv": (_P, _R.other),
    "pat-preg": (_P, _R.other),
    "pat-swl": (_P, _R.other),
    "pat-ucp": (_P, _R.other),
    "prov": (_PR, _R.provider_unavailable),
    "prov-pers": (_PR, _R.provider_unavailable),
    "prov-personal": (_PR, _R.provider_unavailable),
    "prov-dch": (_PR, _R.provider_unavailable),
    "prov-edu": (_PR, _R.provider_unavailable),
    "prov-hosp": (_PR, _R.provider_unavailable),
    "prov-labs": (_PR, _R.other),
    "prov-mri": (_PR, _R.other),
    "prov-onc": (_PR, _R.other),
    "maint": (_PR, _R.practice_rescheduled),
    "meds-inc": (_PR, _R.other),
    "oth-room": (_PR, _R.practice_rescheduled),
    "oth-mu": (_PR, _R.other),
    "oth-iv": (_PR, _R.other),
    "oth-int": (_PR, _R.other),
    "oth-cms": (_PR, _R.cost),
    "oth-fin": (_U, _R.cost),
    "oth-err": (_PR, _R.entered_in_error),
    "oth-oerr": (_PR, _R.entered_in_error),
    "oth-swie": (_PR, _R.entered_in_error),
    "oth-weath": (_U, _R.weather),
    "other": (_U, _R.other),
}


def cancellation(code: str | None) -> tuple[Initiator, CancellationReason]:
    """Who cancelled and why, from a cancellation-reason code; unknown when not in the table."""
    return CANCELLATION_REASONS.get((code or "").strip().lower(), (_U, _R.unknown))
