"""Value types and vocabularies that several event payloads share.

Everything here is frozen and refuses unknown fields, like the payloads themselves. Validation
error messages never repeat the offending value, so they are safe to log (see CONVENTIONS.md,
Privacy).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

# --- scalar types ---------------------------------------------------------------------------

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^\S+$")]
"""An opaque identifier (EHR record id, sequence id, slot ref ...): no spaces, never parsed."""

Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S+$")]
"""A code from a code system (CPT, HCPCS, SNOMED CT or the practice's own)."""

Key = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.\-]*$")
]
"""A machine key chosen by Revisit (workflow key, template key): lower-case, dots, dashes."""

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""ISO 4217 currency code."""

Cents = Annotated[int, Field(ge=0, le=100_000_000)]
"""Money in integer minor units; a million in major units is already absurd for one line."""

Language = Annotated[
    str,
    StringConstraints(min_length=2, max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"),
]
"""BCP 47 language tag, e.g. ``en`` or ``es-US``."""

Step = Annotated[int, Field(ge=1, le=50)]
"""The 1-based number of a step inside an outreach sequence."""

Days = Annotated[int, Field(ge=1, le=3650)]
"""A whole number of days (intervals, windows); ten years is the longest sensible one."""

Instant = AwareDatetime
"""A datetime that must carry a time zone offset; naive datetimes are refused."""


def _iana_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a known IANA time zone name") from None
    return value


TimeZoneName = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_iana_time_zone)
]
"""An IANA time zone name such as ``America/Chicago`` (checked against the zone database)."""

StateCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
"""A US state (or territory) postal code, e.g. ``FL`` (the state of a patient's address)."""

StaffOnlyText = Annotated[str, StringConstraints(min_length=1, max_length=500)]
"""Free text the practice wrote in the EHR, carried for staff screens ONLY.

It may contain clinical detail, so it never reaches a message template, a log line, a metric
label or an escalation summary. Consumers that do not show it to staff must ignore it.
"""

PlainReason = Annotated[str, StringConstraints(min_length=1, max_length=200)]
"""A short reason in plain words, built from structured fields (never a diagnosis, never
free text copied from the record), e.g. "6-month follow-up recommended at visit on 2024-03-01"."""


# --- vocabularies ---------------------------------------------------------------------------


class ServiceLine(StrEnum):
    """The dermatology care a patient is being brought back for, in patient-facing terms."""

    skin_check = "skin_check"
    biopsy_follow_up = "biopsy_follow_up"
    skin_cancer_surgery = "skin_cancer_surgery"
    mohs = "mohs"
    acne = "acne"
    isotretinoin = "isotretinoin"
    rosacea = "rosacea"
    psoriasis_eczema = "psoriasis_eczema"
    hair_loss = "hair_loss"
    phototherapy = "phototherapy"
    patch_testing = "patch_testing"
    general_dermatology = "general_dermatology"
    cosmetic_consult = "cosmetic_consult"
    neurotoxin = "neurotoxin"
    filler = "filler"
    laser = "laser"
    chemical_peel = "chemical_peel"
    microneedling = "microneedling"
    unspecified = "unspecified"  # the EHR's appointment type did not map to a service line

    @property
    def is_cosmetic(self) -> bool:
        """Usually elective: outreach for it defaults to marketing (needs marketing consent).

        Not a rule the schema enforces: a laser or a peel can be part of a medical plan.
        """
        return self in _COSMETIC


_COSMETIC = frozenset(
    {
        ServiceLine.cosmetic_consult,
        ServiceLine.neurotoxin,
        ServiceLine.filler,
        ServiceLine.laser,
        ServiceLine.chemical_peel,
        ServiceLine.microneedling,
    }
)


class ClinicalUrgency(StrEnum):
    """How soon the documented plan wants the patient seen. Revisit may lower it, never raise it."""

    routine = "routine"
    soon = "soon"
    urgent = "urgent"

    @property
    def rank(self) -> int:
        return _URGENCY_RANK[self]

    def capped_at(self, documented: ClinicalUrgency) -> ClinicalUrgency:
        """This urgency, but never above what the plan documented."""
        return self if self.rank <= documented.rank else documented


_URGENCY_RANK = {ClinicalUrgency.routine: 0, ClinicalUrgency.soon: 1, ClinicalUrgency.urgent: 2}


class Segment(StrEnum):
    """The segmenter's rules (ARCHITECTURE.md, Segments)."""

    follow_up_not_booked = "follow_up_not_booked"
    series_incomplete = "series_incomplete"
    cancelled_not_rescheduled = "cancelled_not_rescheduled"
    cosmetic_maintenance_due = "cosmetic_maintenance_due"
    chronic_review_overdue = "chronic_review_overdue"
    question_no_review = "question_no_review"
    lapsed_patient = "lapsed_patient"
    consult_no_treatment = "consult_no_treatment"


class SegmentKind(StrEnum):
    recall = "recall"  # a documented care need is coming due
    reactivation = "reactivation"  # the patient dropped out of care they started


class Channel(StrEnum):
    sms = "sms"
    email = "email"


class Purpose(StrEnum):
    """Why a message is sent; marketing needs marketing consent, care does not."""

    care = "care"
    marketing = "marketing"


class Initiator(StrEnum):
    """Who made an appointment change."""

    patient = "patient"
    practice = "practice"
    unknown = "unknown"


class SourceSystem(StrEnum):
    fhir = "fhir"
    hl7v2 = "hl7v2"
    json = "json"


class SourceRecordKind(StrEnum):
    """The kind of EHR record a fact came from."""

    patient = "patient"
    appointment = "appointment"
    visit = "visit"
    follow_up = "follow_up"
    treatment_plan = "treatment_plan"
    treatment_recommendation = "treatment_recommendation"
    question = "question"
    feedback = "feedback"


class CodeSystem(StrEnum):
    """Procedure / service code systems. Diagnosis code systems are deliberately absent."""

    cpt = "cpt"
    hcpcs = "hcpcs"
    snomed_ct = "snomed_ct"
    local = "local"  # the practice's own fee schedule


class ContactKind(StrEnum):
    phone = "phone"
    email = "email"


class ContactUse(StrEnum):
    """FHIR ContactPoint.use."""

    mobile = "mobile"
    home = "home"
    work = "work"
    temp = "temp"
    old = "old"


# --- value objects --------------------------------------------------------------------------


class Value(BaseModel):
    """Base of the small value objects: immutable and strict about their fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class EhrSource(Value):
    """Where an EHR fact came from, so a consumer can spot an out-of-order or stale arrival."""

    system: SourceSystem
    record_id: Id
    source_version: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    source_updated_at: Instant


class SourceRecord(Value):
    """A pointer to the EHR record an eligibility (or exit) was derived from."""

    kind: SourceRecordKind
    id: Id


class ServiceCode(Value):
    """A coded procedure or service, e.g. CPT 64612 or the practice's ``BOTOX-20``."""

    code: Code
    system: CodeSystem
    display: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = None


class ServicePerformed(Value):
    """One billed line of a completed visit."""

    code: Code
    system: CodeSystem
    display: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = None
    service_line: ServiceLine
    charge_cents: Cents
    currency: Currency = "USD"


_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class Contact(Value):
    """A phone number (E.164) or e-mail address. Only PatientUpserted carries these."""

    kind: ContactKind
    value: Annotated[str, StringConstraints(min_length=3, max_length=254)]
    use: ContactUse = ContactUse.home
    rank: Annotated[int, Field(ge=1, le=99)] = 1  # 1 is the patient's preferred contact

    @model_validator(mode="after")
    def _value_matches_kind(self) -> Contact:
        # The messages name the expected shape, never the value itself.
        if self.kind is ContactKind.phone and not _E164.match(self.value):
            raise ValueError("phone contact must be in E.164 form (+ and 7-15 digits)")
        if self.kind is ContactKind.email and not _EMAIL.match(self.value):
            raise ValueError("email contact must look like local@domain.tld")
        return self


# Identifier types (HL7 table 0203) that name the patient's record in a practice system. Anything
# else (social security, driver's licence, passport, insurance member numbers) never travels.
RECORD_IDENTIFIER_TYPES = frozenset({"MR", "MRT", "PI", "PT", "PN"})
_NOT_A_RECORD_SYSTEM = ("us-ssn", "ssn", "passport", "driver", "licen", "medicare", "medicaid")


class RecordIdentifier(Value):
    """One of the patient's record numbers in a practice system (an MRN, the EHR's patient id).

    ``system`` is the namespace as a URI when the source gives one (FHIR ``Identifier.system``,
    HL7 CX-4 universal id as ``urn:oid:``); ``assigner`` is the HL7 assigning authority's
    namespace id (CX-4.1), which an EHR connection maps to the EHR's own system. ``type`` is the
    HL7 0203 code (``MR``...). Carried so the messenger can find the same patient in the EHR.
    """

    value: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]
    system: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    assigner: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    type: Annotated[str, StringConstraints(min_length=1, max_length=10)] | None = None

    @model_validator(mode="after")
    def _names_its_namespace(self) -> RecordIdentifier:
        if self.system is None and self.assigner is None:
            raise ValueError("a record identifier needs a system or an assigner")
        return self


def is_record_identifier(system: str | None, type_code: str | None) -> bool:
    """True for a record number worth carrying; never for an SSN, licence or insurance id."""
    if type_code and type_code.upper() not in RECORD_IDENTIFIER_TYPES:
        return False
    lowered = (system or "").lower()
    return not any(word in lowered for word in _NOT_A_RECORD_SYSTEM)
