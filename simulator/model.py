"""The synthetic practice as plain data: who works where, what it offers, who its patients are,
and what its EHR records over time.

Everything here is pure and frozen. ``simulator.practice`` builds it from a seed; the EHR
feed (``simulator.fhir_out`` and ``simulator.hl7_out``) renders the records for ingest; the
engine replays the timeline as the controlled clock passes each record's ``at``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from shared.events.common import ServiceLine


@dataclass(frozen=True)
class Service:
    """One line of the practice's service catalogue, as its front desk and price list name it."""

    code: str  # the practice's own appointment-type key (SKINCHECK, BOTOX...): ingest maps it
    cpt: str  # billed on the claim
    name: str  # patient-facing ("Full-body skin check")
    service_line: ServiceLine
    price_cents: int
    minutes: int
    sessions: int = 1  # > 1: a series (laser, peels, phototherapy)
    interval_days: int | None = None  # between sessions of a series
    maintenance_days: int | None = None  # cosmetic upkeep
    review_days: int | None = None  # a standing review (chronic care, surveillance)
    cosmetic: bool = False


@dataclass(frozen=True)
class Location:
    location_id: str
    name: str  # "Downtown", "Northside"...


@dataclass(frozen=True)
class Provider:
    provider_id: str
    name: str  # "Dr. Rivera"
    location_id: str
    service_codes: tuple[str, ...]


@dataclass(frozen=True)
class Clinic:
    """The practice as one Revisit tenant (clinic_id) with a few locations."""

    clinic_id: str
    name: str
    time_zone: str  # IANA
    state: str  # US state, for quiet-hour rules
    locations: tuple[Location, ...]
    providers: tuple[Provider, ...]
    catalogue: tuple[Service, ...]

    def service(self, code: str) -> Service:
        return next(s for s in self.catalogue if s.code == code)


class Persona(StrEnum):
    """How a patient answers outreach (the behaviour model per persona lives in patients.py)."""

    prompt = "prompt"  # books at once
    busy = "busy"  # asks for later, books the second time
    price_sensitive = "price_sensitive"  # names cost as a barrier
    anxious = "anxious"  # asks a clinical question; rarely a red flag
    done = "done"  # no longer needed / declines / STOP
    silent = "silent"  # never answers


class Journey(StrEnum):
    """The story the generator gave a patient; each one leads to (at least) one segment."""

    surveillance = "surveillance"  # skin checks every 6-12 months -> chronic_review_overdue
    follow_up = "follow_up"  # biopsy/visit with a follow-up date -> follow_up_not_booked
    series = "series"  # laser/peel series left part done -> series_incomplete
    canceller = "canceller"  # cancels or no-shows -> cancelled_not_rescheduled
    cosmetic = "cosmetic"  # neurotoxin/filler upkeep -> cosmetic_maintenance_due
    chronic = "chronic"  # psoriasis/eczema, isotretinoin reviews -> chronic_review_overdue
    question = "question"  # portal question, review recommended -> question_no_review
    lapsed = "lapsed"  # regular, then quiet for 18+ months -> lapsed_patient
    consult = "consult"  # consult recommends treatment, never started -> consult_no_treatment
    regular = "regular"  # attends as planned: no gap (the practice is not all gaps)


@dataclass(frozen=True)
class Patient:
    patient_id: str  # the EHR's MRN ("P-000123")
    given_name: str
    family_name: str
    birth_date: date
    sex: str  # "female" | "male"
    phone: str  # E.164, fictional 555-01xx numbers
    email: str  # @example.com / .org / .net only
    language: str  # "en" | "es"
    persona: Persona
    journey: Journey
    home_location_id: str
    provider_id: str  # usual provider
    marketing_consent: bool
    poor_experience: bool = False  # a recorded poor experience -> service recovery first


# --- what the EHR records, as a timeline ----------------------------------------------------


class AppointmentStatus(StrEnum):
    booked = "booked"
    cancelled = "cancelled"
    noshow = "noshow"
    fulfilled = "fulfilled"


@dataclass(frozen=True)
class AppointmentRecord:
    """One version of an appointment (the EHR re-sends the whole record on each change)."""

    appointment_id: str
    patient_id: str
    service_code: str
    provider_id: str
    location_id: str
    start: datetime
    minutes: int
    status: AppointmentStatus
    version: int  # 1 when booked, +1 on each change
    cancelled_by: str | None = None  # "patient" | "practice"


@dataclass(frozen=True)
class Charge:
    service_code: str
    cpt: str
    amount_cents: int


@dataclass(frozen=True)
class VisitRecord:
    """A finished encounter with its charges and whatever its plan recommended."""

    visit_id: str
    patient_id: str
    appointment_id: str | None
    provider_id: str
    location_id: str
    start: datetime
    end: datetime
    charges: tuple[Charge, ...]
    follow_up: FollowUp | None = None
    recommendation: Recommendation | None = None
    plan: SeriesPlan | None = None


@dataclass(frozen=True)
class FollowUp:
    follow_up_id: str
    service_code: str
    due_on: date | None
    interval_days: int | None
    recurring: bool = False


@dataclass(frozen=True)
class Recommendation:
    """A consultation's recommended treatment (ServiceRequest intent=proposal)."""

    recommendation_id: str
    service_code: str
    sessions: int
    start_within_days: int


@dataclass(frozen=True)
class SeriesPlan:
    """A counted series (CarePlan): progress = the visits done so far."""

    plan_id: str
    service_code: str
    sessions_planned: int
    interval_days: int
    done_visit_ids: tuple[str, ...]
    done_dates: tuple[date, ...]
    status: str = "active"


@dataclass(frozen=True)
class QuestionRecord:
    """A portal question (Communication from the patient), triaged: a review is recommended."""

    question_id: str
    patient_id: str
    service_code: str
    sent_at: datetime
    review_within_days: int


@dataclass(frozen=True)
class FeedbackRecord:
    """A survey answer (QuestionnaireResponse); score 0-6 is a poor experience."""

    feedback_id: str
    patient_id: str
    visit_id: str | None
    score: int
    topics: tuple[str, ...]
    recorded_at: datetime


EhrRecord = AppointmentRecord | VisitRecord | QuestionRecord | FeedbackRecord


@dataclass(frozen=True)
class Happening:
    """A record the EHR writes at ``at``; the engine sends it once the clock passes ``at``.

    ``via`` is how the EHR tells ingest: appointments go as HL7 v2 SIU over MLLP, everything
    else as FHIR R4 Bundles (a practice's integration engine commonly does both).
    """

    at: datetime
    record: EhrRecord
    via: str = "fhir"  # "fhir" | "hl7"


@dataclass(frozen=True)
class Practice:
    clinic: Clinic
    patients: tuple[Patient, ...]
    timeline: tuple[Happening, ...]  # sorted by at; history first, then the planned future
    seed: int
    start: datetime  # the simulated "now" the practice was generated for
    by_id: dict[str, Patient] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_id.update({p.patient_id: p for p in self.patients})

    def patient(self, patient_id: str) -> Patient:
        return self.by_id[patient_id]
