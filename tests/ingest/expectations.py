"""What every third-party sample under ../shared/realdata must produce (see its PROVENANCE.md).

Each file maps to these events, in this order, or is refused with this precise problem. The
pure mapping test and the HTTP test both check against this one table; a new sample file
without an entry here fails both.
"""

from __future__ import annotations

from dataclasses import dataclass

PU, BOOKED, CANCELLED = "PatientUpserted", "AppointmentBooked", "AppointmentCancelled"
NOSHOW, VISIT = "AppointmentNoShow", "VisitCompleted"


@dataclass(frozen=True)
class Expect:
    events: tuple[str, ...] = ()
    refused: tuple[str, str] | None = None  # (loc of the first problem, words in its message)
    reject: bool = False  # HL7: AR (do not resend) rather than AE
    why: str = ""


def visits(count: int) -> tuple[str, ...]:
    return (PU,) + (VISIT,) * count


FHIR: dict[str, Expect] = {
    # FHIR-Converter output of the SIU messages: the patient first, then the appointment.
    "msfc_SIU-S12-01-expected.bundle.json": Expect((PU, BOOKED), why="in-progress Encounter: no"),
    "msfc_SIU-S15-01-expected.bundle.json": Expect((PU, CANCELLED)),
    "msfc_SIU-S26-01-expected.bundle.json": Expect((PU, NOSHOW)),
    "r4ex_Appointment-2docs.json": Expect((BOOKED,), why="provider: first Practitioner"),
    "r4ex_Appointment-example.json": Expect((BOOKED,)),
    "r4ex_Appointment-examplereq.json": Expect((), why="proposed: recorded, not booked"),
    "r4ex_Bundle-bundle-example.json": Expect(refused=("Bundle.type", "searchset is not taken")),
    "r4ex_Bundle-bundle-response.json": Expect(
        refused=("Bundle.type", "transaction-response is not taken")
    ),
    # POST without an id, conditional PUT and DELETE, an operation, GETs: every one is named.
    "r4ex_Bundle-bundle-transaction.json": Expect(
        refused=("Bundle.entry[0].Patient.id", "required: the EHR's id")
    ),
    "r4ex_CarePlan-example.json": Expect((), why="a weight-check activity: not a visit"),
    "r4ex_CarePlan-gpvisit.json": Expect((), why="visits completed or already scheduled"),
    "r4ex_Communication-example.json": Expect((), why="sent by a device, not the patient"),
    "r4ex_CommunicationRequest-example.json": Expect((), why="no event from this type"),
    "r4ex_CommunicationRequest-fm-solicit.json": Expect(()),
    "r4ex_Consent-consent-example-Out.json": Expect((), why="a privacy consent, not contact"),
    "r4ex_Consent-consent-example-basic.json": Expect(()),
    "r4ex_Consent-consent-example-smartonfhir.json": Expect(()),
    "r4ex_Encounter-example.json": Expect((), why="in-progress"),
    "r4ex_Encounter-f001.json": Expect(refused=("Encounter.period", "needs its end or start")),
    "r4ex_Encounter-home.json": Expect((VISIT,)),
    "r4ex_Patient-example.json": Expect((PU,), why="greeted by the usual name"),
    "r4ex_Patient-pat1.json": Expect((PU,)),
    "r4ex_Schedule-example.json": Expect(()),
    "r4ex_ServiceRequest-education.json": Expect((), why="completed: not a recommendation"),
    "r4ex_ServiceRequest-example.json": Expect(()),
    "r4ex_ServiceRequest-physical-therapy.json": Expect(()),
    "r4ex_Slot-1.json": Expect(()),
    "r4ex_Slot-2.json": Expect(()),
    "r4ex_Slot-3.json": Expect(()),
    "r4ex_Slot-example.json": Expect(()),
}

SYNTHEA: dict[str, Expect] = {
    # One VisitCompleted per finished Encounter; the CarePlans hold no open visit or series.
    "iris_Carroll471_OHara248_274f5452-2a39-44c4-a7cb-f36de467762e.json": Expect(visits(14)),
    "iris_Frankie174_Jast432_a5b737fb-1f94-4767-802b-1112051f5101.json": Expect(visits(30)),
    "iris_Gabriele201_Rohan584_b0223c9b-0019-42b0-99b8-7d689d7f8414.json": Expect(visits(20)),
    "iris_Kallie862_Frami345_9a0d7938-4f49-43f6-8eea-b22e1bbe1b74.json": Expect(visits(31)),
    "iris_Lean294_Davis923_3e36b31d-3c32-43b4-b016-b46a90c2e50f.json": Expect(visits(37)),
    "iris_Margie619_Hettinger594_29428a22-5f03-492e-83bb-da34bb2a12c9.json": Expect(visits(58)),
    "iris_hospitalInformation1596649672088.json": Expect(()),
    "iris_practitionerInformation1596649672088.json": Expect(()),
}

# The same for hl7v2/ (LF-separated) and hl7v2/derived_cr/ (CR-separated copies).
HL7: dict[str, Expect] = {
    "gcp-hdh_adt_a01_ex1.hl7": Expect(
        refused=("MSH-9", "ADT^A01 is not taken"), reject=True, why="admissions: not our feed"
    ),
    "gcp-hdh_adt_a04_ex1.hl7": Expect((PU,), why="v2.1, two-component MSH-9"),
    "gcp-hdh_adt_a08_ex1.hl7": Expect((PU,), why="guarantor and next of kin are not the patient"),
    # MSH-11 is T (training): refused unless the deployment takes T (see the unit test).
    "gcp-hdh_siu_s12_ex1.hl7": Expect(
        refused=("MSH-11", "processing id training is not accepted"), reject=True
    ),
    "msfc_ADT-A03-01.hl7": Expect((PU, VISIT), why="EVN-1 says A01: MSH-9 wins"),
    "msfc_ADT-A03-02.hl7": Expect((PU, VISIT)),
    "msfc_ADT-A04-01.hl7": Expect((PU,)),
    "msfc_ADT-A04-02.hl7": Expect((PU,)),
    "msfc_ADT-A08-01.hl7": Expect((PU,)),
    "msfc_ADT-A08-02.hl7": Expect((PU,)),
    "msfc_SIU-S12-01.hl7": Expect((PU, BOOKED)),
    "msfc_SIU-S12-02.hl7": Expect((PU, BOOKED), why="three resource groups, one appointment"),
    "msfc_SIU-S13-01.hl7": Expect((PU, BOOKED), why="start unchanged and no earlier version"),
    "msfc_SIU-S14-01.hl7": Expect((PU, BOOKED)),
    "msfc_SIU-S15-01.hl7": Expect((PU, CANCELLED)),
    "msfc_SIU-S15-02.hl7": Expect((PU, CANCELLED)),
    "msfc_SIU-S16-01.hl7": Expect((PU, CANCELLED), why="discontinued"),
    "msfc_SIU-S17-01.hl7": Expect((PU, CANCELLED), why="deleted: entered in error"),
    "msfc_SIU-S26-01.hl7": Expect((PU, NOSHOW)),
    "msfc_SIU-S26-02.hl7": Expect((PU, NOSHOW)),
}

FOLDERS: dict[str, dict[str, Expect]] = {
    "fhir": FHIR,
    "synthea": SYNTHEA,
    "hl7v2": HL7,
    "hl7v2/derived_cr": HL7,
}
