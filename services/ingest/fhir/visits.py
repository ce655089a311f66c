"""Encounter (finished) -> VisitCompleted, with the services billed for it in the same document.

Services come from Claim items that name the encounter (or from a Claim with an item that does)
and from ChargeItems whose context is the encounter. Items that only carry a diagnosis (Claim
items with a diagnosisSequence and no procedureSequence) and codes from systems that name no
service (ICD, LOINC, RxNorm...) are left out: events never carry a diagnosis; pharmacy claims
(what was dispensed) are not services of the visit. A charge is the item's net, else unit price
x quantity, else the claim's total when it has one item, else 0 (no price given).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.ingest.domain import Fact, Problem, Refused, build
from services.ingest.fhir.context import DocumentContext, codes, codings
from services.ingest.fhir.reading import Entry
from shared.events.common import ServicePerformed
from shared.events.ehr import VisitCompleted

_ATTENDING = {"ATND", "PPRF", "PART", "SPRF"}
_VOID = {"entered-in-error", "cancelled", "aborted", "not-billable"}


def map_encounter(entry: Entry, doc: DocumentContext) -> tuple[list[Fact], list[Problem]]:
    enc, loc = entry.resource, entry.loc
    if enc.status != "finished":
        note = Problem(f"{loc}.status", "only a finished encounter is a completed visit")
        return [], [note]
    patient_id = doc.patient(enc.subject, f"{loc}.subject")
    period = enc.period
    completed = doc.instant(period.end) or doc.instant(period.start) if period else None
    if completed is None:
        raise Refused([Problem(f"{loc}.period", "a finished encounter needs its end or start")])
    people = [p for p in enc.participant or [] if doc.practitioner(p.individual)]
    attending = [p for p in people if any(c in _ATTENDING for _s, c in codings(p.type))]
    chosen = (attending or people or [None])[0]
    visit = build(
        VisitCompleted,
        loc,
        source=doc.source(enc),
        visit_id=enc.id,
        appointment_id=next(
            (rid for ref in enc.appointment or [] if (rid := doc.id_of(ref, "Appointment"))), None
        ),
        completed_at=completed,
        provider_id=doc.practitioner(chosen.individual) if chosen is not None else None,
        location_id=next(
            (rid for item in enc.location or [] if (rid := doc.id_of(item.location, "Location"))),
            None,
        ),
        services=tuple(_services(enc.id, doc))[:100],
    )
    return [Fact(patient_id, visit, completed)], []


def _services(encounter_id: str, doc: DocumentContext) -> list[ServicePerformed]:
    out: list[ServicePerformed] = []
    for claim_entry in doc.of_type("Claim"):
        claim = claim_entry.resource
        items = claim.item or []
        names_it = [i for i in items if _names(doc, i.encounter, encounter_id)]
        if claim.status in _VOID or not names_it or "pharmacy" in codes(claim.type):
            continue
        for item in items:
            if item.diagnosisSequence and not item.procedureSequence:
                continue
            price = _money(item.net) or _times(item.unitPrice, item.quantity)
            if price is None and len(items) == 1:
                price = _money(claim.total)
            service = _service(doc, item.productOrService, price)
            if service is not None:
                out.append(service)
    for charge_entry in doc.of_type("ChargeItem"):
        charge = charge_entry.resource
        if charge.status in _VOID or not _names(doc, [charge.context], encounter_id):
            continue
        price = _times(charge.priceOverride, charge.quantity)
        service = _service(doc, charge.code, price)
        if service is not None:
            out.append(service)
    return out


def _names(doc: DocumentContext, refs: Any, encounter_id: str) -> bool:
    return any(doc.id_of(ref, "Encounter") == encounter_id for ref in refs or [] if ref)


def _money(money: Any) -> tuple[Decimal, str] | None:
    if money is None or money.value is None:
        return None
    return Decimal(str(money.value)), (money.currency or "USD")


def _times(money: Any, quantity: Any) -> tuple[Decimal, str] | None:
    unit = _money(money)
    if unit is None:
        return None
    count = Decimal(str(quantity.value)) if quantity is not None and quantity.value else Decimal(1)
    return unit[0] * count, unit[1]


def _service(
    doc: DocumentContext, concept: Any, price: tuple[Decimal, str] | None
) -> ServicePerformed | None:
    for coding in getattr(concept, "coding", None) or []:
        [(system, code)] = codings(_single(coding)) or [(None, "")]
        if system is None or not code or len(code) > 64 or " " in code:
            continue
        amount, currency = price or (Decimal(0), "USD")
        cents = int((amount * 100).to_integral_value())
        if not 0 <= cents <= 100_000_000 or len(currency) != 3 or not currency.isupper():
            return None
        display = (coding.display or getattr(concept, "text", None) or "").strip()[:120] or None
        return ServicePerformed(
            code=code,
            system=system,
            display=display,
            service_line=doc.ctx.service_lines.first([(system, code)]),
            charge_cents=cents,
            currency=currency,
        )
    return None


class _single:
    """A CodeableConcept-like wrapper around one Coding, for ``codings``."""

    def __init__(self, coding: Any) -> None:
        self.coding = [coding]
