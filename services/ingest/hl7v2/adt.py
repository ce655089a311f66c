"""ADT A04/A08/A28/A31 -> PatientUpserted; A03 (visit ended) -> PatientUpserted + VisitCompleted.

A03 carries no charges (they come later, in a DFT^P03: see ``charges``), so its VisitCompleted
has only the procedures its PR1 segments name, without amounts; the DFT's version of the same
visit then carries the charged services and amounts.
"""

from __future__ import annotations

from services.ingest.domain import Fact, MappingContext, Problem, Refused, build
from services.ingest.hl7v2.charges import procedures
from services.ingest.hl7v2.fields import timestamp
from services.ingest.hl7v2.patients import message_time, patient_upserted
from services.ingest.hl7v2.reading import Hl7Message
from services.ingest.hl7v2.scheduling import place_id
from services.ingest.mapping.drafts import Mapped
from services.ingest.mapping.ids import opaque_id, required_id
from shared.events.common import EhrSource, SourceSystem
from shared.events.ehr import VisitCompleted

PATIENT_TRIGGERS = frozenset({"A04", "A08", "A28", "A31"})
VISIT_END_TRIGGERS = frozenset({"A03"})


def map_patient(msg: Hl7Message, ctx: MappingContext) -> Mapped:
    return Mapped((patient_upserted(msg, ctx),))


def map_visit_end(msg: Hl7Message, ctx: MappingContext) -> Mapped:
    patient = patient_upserted(msg, ctx)
    pv1 = msg.one("PV1")
    if pv1 is None:
        raise Refused([Problem("PV1", "required: the visit (PV1 segment)", "100")])
    visit_id = required_id(pv1.value(19), pv1.loc(19), "the visit number")
    recorded = message_time(msg, ctx)
    completed_at = recorded
    evn = msg.one("EVN")
    for seg, position in ((pv1, 45), (evn, 6)):
        if seg is not None:
            found = timestamp(seg.value(position), ctx.local_zone, seg.loc(position))
            if found:
                completed_at = found[0]
                break
    visit = build(
        VisitCompleted,
        "PV1",
        source=EhrSource(system=SourceSystem.hl7v2, record_id=visit_id, source_updated_at=recorded),
        visit_id=visit_id,
        completed_at=completed_at,
        provider_id=opaque_id(pv1.value(7)),
        location_id=place_id(pv1, 3),
        services=tuple(procedures(msg, ctx, set())[:100]),
    )
    return Mapped((patient, Fact(patient.patient_id, visit, completed_at)))
