"""A FHIR document -> Mapped, all or nothing: every problem of every entry is reported at once.

Patients are mapped first (so a consumer knows the patient before their appointments), then
the other resources in document order. Types Revisit does not map are summarised in one note
per type rather than refused: an EHR's Bundle carries far more than recall needs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from services.ingest.domain import Fact, MappingContext, Problem, Refused
from services.ingest.fhir.appointments import map_appointment
from services.ingest.fhir.context import DocumentContext
from services.ingest.fhir.patient_voice import (
    map_communication,
    map_consent,
    map_questionnaire_response,
)
from services.ingest.fhir.patients import map_patient
from services.ingest.fhir.plans import map_care_plan, map_service_request
from services.ingest.fhir.reading import (
    MAPPED,
    READ_BESIDE,
    Entry,
    FhirDocument,
    read_document,
)
from services.ingest.fhir.visits import map_encounter
from services.ingest.mapping.drafts import Draft, Mapped

Mapper = Callable[[Entry, DocumentContext], tuple[list[Fact], list[Problem]]]
_MAPPERS: dict[str, Mapper] = {
    "Encounter": map_encounter,
    "CarePlan": map_care_plan,
    "Communication": map_communication,
    "Consent": map_consent,
    "QuestionnaireResponse": map_questionnaire_response,
}


def read_and_map(
    doc: Any, ctx: MappingContext, *, path: tuple[str, str] | None = None
) -> tuple[FhirDocument, Mapped]:
    document = read_document(doc, path=path)
    return document, map_document(document, ctx)


def map_document(document: FhirDocument, ctx: MappingContext) -> Mapped:
    context = DocumentContext(document, ctx)
    booked = {
        rid
        for appt in context.of_type("Appointment")
        for ref in appt.resource.basedOn or []
        if (rid := context.id_of(ref, "ServiceRequest"))
    }
    ordered = sorted(document.entries, key=lambda e: e.resource_type != "Patient")
    drafts: list[Draft] = []
    notes: list[Problem] = []
    problems: list[Problem] = []
    skipped: Counter[str] = Counter()
    for entry in ordered:
        if entry.resource_type not in MAPPED:
            skipped[entry.resource_type] += 1
            continue
        try:
            if entry.resource_type == "Patient":
                drafts.append(map_patient(entry, context))
            elif entry.resource_type == "Appointment":
                drafts.append(map_appointment(entry, context))
            elif entry.resource_type == "ServiceRequest":
                facts, found = map_service_request(entry, context, booked)
                drafts += facts
                notes += found
            else:
                facts, found = _MAPPERS[entry.resource_type](entry, context)
                drafts += facts
                notes += found
        except Refused as exc:
            problems.extend(exc.problems)
    if problems:
        raise Refused(problems[:50])
    notes += [
        Problem(kind, f"{count} read beside the records they support, no event of their own")
        if kind in READ_BESIDE
        else Problem(kind, f"{count} not mapped: no Revisit event comes from this type")
        for kind, count in sorted(skipped.items())
    ]
    return Mapped(tuple(drafts), tuple(notes))
