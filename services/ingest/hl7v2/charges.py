"""DFT^P03 (posted charges) -> PatientUpserted + VisitCompleted with the services and amounts;
PR1 procedures of a DFT or an A03 -> services too (without an amount when no charge names them).

HL7-only practices send a visit's money in financial messages, after the visit: a DFT^P03 is
one visit (PV1-19, the visit number) and its FT1 lines. It becomes the same VisitCompleted the
A03 produced, now with its services (consumers keep the newest version of a visit), so completed
visits carry their services and revenue whichever route the practice uses.

FT1: the type (FT1-6) must be a charge (``CG``; empty is read as a charge); credits, payments
and adjustments are left out with a note. The code is FT1-25 (procedure code), else FT1-7
(transaction code), with the coding system of component 3 (CPT ``C4``/``CPT``, HCPCS, the
practice's ``99…`` systems); a diagnosis (FT1-19) never travels. The amount is FT1-11 (extended:
the line's total), else FT1-12 (unit) x FT1-10 (quantity), else 0; a reversal (negative
quantity or amount) is left out with a note. The visit ends at PV1-45, else the latest service
date (FT1-4), else the message time.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError

from services.ingest.domain import (
    Fact,
    MappingContext,
    Problem,
    Refused,
    build,
    validation_problems,
)
from services.ingest.hl7v2.fields import Seg, coded, timestamp
from services.ingest.hl7v2.patients import message_time, patient_upserted
from services.ingest.hl7v2.reading import Hl7Message
from services.ingest.hl7v2.scheduling import place_id
from services.ingest.mapping.drafts import Mapped
from services.ingest.mapping.ids import opaque_id, required_id
from services.ingest.mapping.service_lines import hl7_code_system
from shared.events.common import EhrSource, ServicePerformed, SourceSystem
from shared.events.ehr import VisitCompleted

CHARGE_TRIGGERS = frozenset({"P03"})
_CHARGE_TYPES = {"", "CG"}
MAX_SERVICES = 100


def map_charges(msg: Hl7Message, ctx: MappingContext) -> Mapped:
    patient = patient_upserted(msg, ctx)
    pv1 = msg.one("PV1")
    if pv1 is None or not pv1.value(19):
        raise Refused([Problem("PV1-19", "required: the visit these charges belong to", "101")])
    visit_id = required_id(pv1.value(19), pv1.loc(19), "the visit number")
    notes: list[Problem] = []
    services: list[ServicePerformed] = []
    dates: list[datetime] = []
    for ft1 in msg.all("FT1"):
        kind = ft1.value(6).upper()
        if kind not in _CHARGE_TYPES:
            notes.append(Problem(ft1.loc(6), "only charges (CG) are services of the visit"))
            continue
        service = _charge(ft1, ctx, notes)
        if service is not None:
            services.append(service)
        found = timestamp(ft1.value(4), ctx.local_zone, ft1.loc(4))
        if found:
            dates.append(found[0])
    services += procedures(msg, ctx, {(s.system, s.code) for s in services})
    recorded = message_time(msg, ctx)
    completed = timestamp(pv1.value(45), ctx.local_zone, pv1.loc(45))
    completed_at = completed[0] if completed else max(dates, default=recorded)
    visit = build(
        VisitCompleted,
        "PV1",
        source=EhrSource(system=SourceSystem.hl7v2, record_id=visit_id, source_updated_at=recorded),
        visit_id=visit_id,
        completed_at=completed_at,
        provider_id=opaque_id(pv1.value(7)) or _performer(msg),
        location_id=place_id(pv1, 3),
        services=tuple(services[:MAX_SERVICES]),
    )
    return Mapped((patient, Fact(patient.patient_id, visit, completed_at)), tuple(notes))


def _code(seg: Seg, positions: tuple[int, ...]) -> tuple[str, str, str | None] | None:
    """(code, text, HL7 system) of the first coded field with a service code system."""
    for position in positions:
        for code, text, system in coded(seg, seg.first(position)):
            if code and hl7_code_system(system) is not None:
                return code, text, system
    return None


def _amount(seg: Seg, position: int) -> tuple[Decimal, str] | None:
    """A CP/MO price (``150.00&USD``, or plain ``150.00`` in older versions)."""
    rep = seg.first(position)
    text = seg.part(rep, 1, 1)
    if not text:
        return None
    try:
        return Decimal(text), (seg.part(rep, 1, 2) or "USD").upper()
    except InvalidOperation:
        raise Refused([Problem(seg.loc(position), "not an amount", "102")]) from None


def _quantity(seg: Seg) -> Decimal:
    text = seg.value(10)
    try:
        return Decimal(text) if text else Decimal(1)
    except InvalidOperation:
        raise Refused([Problem(seg.loc(10), "not a quantity", "102")]) from None


def _charge(ft1: Seg, ctx: MappingContext, notes: list[Problem]) -> ServicePerformed | None:
    found = _code(ft1, (25, 7))
    if found is None:
        notes.append(Problem(ft1.loc(7), "no procedure or charge code from a service system"))
        return None
    code, text, system = found
    quantity = _quantity(ft1)
    extended, unit = _amount(ft1, 11), _amount(ft1, 12)
    price = extended or ((unit[0] * quantity, unit[1]) if unit else (Decimal(0), "USD"))
    if quantity < 0 or price[0] < 0:
        notes.append(Problem(ft1.loc(11), "a reversal (negative charge) is not a service"))
        return None
    return _service(ctx, code, text, system, price, ft1.loc(7))


def _service(
    ctx: MappingContext,
    code: str,
    text: str,
    system: str | None,
    price: tuple[Decimal, str],
    loc: str,
) -> ServicePerformed:
    code_system = hl7_code_system(system)
    assert code_system is not None
    try:
        return ServicePerformed(
            code=code,
            system=code_system,
            display=text[:120] or None,
            service_line=ctx.service_lines.first([(code_system, code)]),
            charge_cents=int((price[0] * 100).to_integral_value()),
            currency=price[1],
        )
    except ValidationError as exc:
        raise Refused(
            [
                Problem(loc, f"{where or 'service'}: {msg}")
                for where, msg in validation_problems(exc)
            ]
        ) from None


def procedures(
    msg: Hl7Message, ctx: MappingContext, billed: set[tuple[object, str]]
) -> list[ServicePerformed]:
    """PR1-3 procedures not already billed by an FT1 line (their amount is then 0)."""
    out = []
    for pr1 in msg.all("PR1"):
        found = _code(pr1, (3,))
        if found is None:
            continue
        code, text, system = found
        service = _service(ctx, code, text, system, (Decimal(0), "USD"), pr1.loc(3))
        if (service.system, service.code) not in billed:
            billed.add((service.system, service.code))
            out.append(service)
    return out


def _performer(msg: Hl7Message) -> str | None:
    for ft1 in msg.all("FT1"):
        found = opaque_id(ft1.value(20))
        if found:
            return found
    return None
