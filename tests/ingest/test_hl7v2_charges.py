"""HL7-only practices: DFT^P03 charges (FT1) and PR1 procedures make completed visits carry their
services and amounts; PID-3 record numbers travel (never an SSN); HL7 times are read in each
clinic's own zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from services.ingest import submissions
from services.ingest.domain import MappingContext
from services.ingest.ingestion import Ingestion
from services.ingest.mapping.drafts import finalize
from services.ingest.mapping.service_lines import ServiceLineTable
from services.ingest.settings import IngestSettings
from shared.events.common import CodeSystem, ServiceLine
from shared.events.ehr import PatientUpserted, VisitCompleted

CTX = MappingContext(
    received_at=datetime(2026, 11, 20, tzinfo=UTC), local_zone=ZoneInfo("America/Chicago")
)
MSH = "MSH|^~\\&|BILLING|DERM|REVISIT|REVISIT|20261121080000-0600||{kind}|{control}|P|2.5.1"
PID = "PID|1||MRN-7^^^DERM1^MR~123-45-6789^^^USSSA^SS||Doe^Ana||19800101|F"


def dft(*segments: str, pv1: str = "PV1|1|O|ROOM3^^^DERM||||DR77^Smith^Jo||||||||||||V-100") -> str:
    head = [MSH.format(kind="DFT^P03^DFT_P03", control="F1"), "EVN|P03|20261121080000", PID, pv1]
    return "\r".join(head + list(segments))


def mapped(text: str, ctx: MappingContext = CTX) -> tuple[list[object], list[str]]:
    [sub] = submissions.hl7_body(text.encode(), "clinic-1", None, ctx, "hl7v2")
    assert sub.mapped is not None, sub.refused and sub.refused.problems
    facts, _ = finalize(sub.mapped, {})
    return [f.payload for f in facts], [f"{n.loc}: {n.msg}" for n in sub.mapped.notes]


def test_charges_make_the_visit_carry_its_services_and_amounts() -> None:
    (patient, visit), notes = mapped(
        dft(
            "FT1|1|T1||20261120103000||CG|11102^Tangential biopsy^C4||Biopsy|1|150.00&USD",
            "FT1|2|T2||20261120110000||CG|96904^Skin check^C4||Skin check|2||75.00&USD",
            "FT1|3|T3||20261120110000||PY|PAY^Payment^L||Copay|1|-40.00",
            "FT1|4|T4||20261120110000||CG|17311^Mohs^C4||Reversal|1|-900.00",
            "PR1|1||11102^Tangential biopsy^C4||20261120103000",
            "PR1|2||17000^Destruction^C4||20261120104500",
        )
    )
    assert isinstance(patient, PatientUpserted) and isinstance(visit, VisitCompleted)
    assert visit.visit_id == "V-100" and visit.provider_id == "DR77"
    assert visit.location_id == "ROOM3"
    assert [(s.code, s.system, s.service_line, s.charge_cents) for s in visit.services] == [
        ("11102", CodeSystem.cpt, ServiceLine.biopsy_follow_up, 15000),
        ("96904", CodeSystem.cpt, ServiceLine.skin_check, 15000),  # 75.00 x 2
        ("17000", CodeSystem.cpt, ServiceLine.unspecified, 0),  # done, not (yet) charged
    ]
    # Without PV1-45 the visit ends at its latest service date.
    assert visit.completed_at == datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
    assert any(n.startswith("FT1[3]-6") for n in notes)  # the payment, left out, said
    assert any(n.startswith("FT1[4]-11") and "reversal" in n for n in notes)


def test_a_diagnosis_on_a_charge_line_never_travels() -> None:
    (_, visit), _ = mapped(
        dft("FT1|1|T1||20261120103000||CG|11102^Biopsy^C4||x|1|150.00|||||||||L57.0^Actinic^I10")
    )
    assert "L57" not in visit.model_dump_json()


def test_charges_need_the_visit_number() -> None:
    text = dft("FT1|1|T1||20261120||CG|11102^B^C4||x|1|1.00", pv1="PV1|1|O")
    [sub] = submissions.hl7_body(text.encode(), "clinic-1", None, CTX, "hl7v2")
    assert sub.refused is not None
    assert [(p.loc, p.msg) for p in sub.refused.problems] == [
        ("PV1-19", "required: the visit these charges belong to")
    ]


def test_an_unreadable_amount_is_refused_where_it_is() -> None:
    [sub] = submissions.hl7_body(
        dft("FT1|1|T1||20261120||CG|11102^B^C4||x|1|one hundred").encode(),
        "clinic-1",
        None,
        CTX,
        "hl7v2",
    )
    assert sub.refused is not None and sub.refused.problems[0].loc == "FT1-11"


def test_a_visit_end_lists_its_procedures_without_amounts() -> None:
    a03 = "\r".join(
        [
            MSH.format(kind="ADT^A03^ADT_A03", control="A1"),
            "EVN|A03|20261120120000",
            PID,
            "PV1|1|O|ROOM3^^^DERM||||DR77||||||||||||V-100",
            "PR1|1||11102^Tangential biopsy^C4||20261120103000",
        ]
    )
    (_, visit), _ = mapped(a03)
    assert [(s.code, s.charge_cents) for s in visit.services] == [("11102", 0)]


def test_pid3_record_numbers_travel_but_never_the_social_security_number() -> None:
    (patient, _), _ = mapped(dft("FT1|1|T1||20261120||CG|11102^B^C4||x|1|1.00"))
    assert [(i.value, i.assigner, i.type) for i in patient.identifiers] == [
        ("MRN-7", "DERM1", "MR")
    ]
    assert "6789" not in patient.model_dump_json()


def test_hl7_times_are_read_in_each_clinics_own_zone() -> None:
    settings = IngestSettings(
        hl7_time_zone="America/New_York",
        hl7_clinic_time_zones={"clinic-west": "America/Los_Angeles"},
    )
    ingestion = Ingestion(
        settings=settings,
        zone=ZoneInfo("America/New_York"),
        service_lines=ServiceLineTable(),
        keys=None,  # type: ignore[arg-type]
        batcher=None,  # type: ignore[arg-type]
        clinic_zones={"clinic-west": ZoneInfo("America/Los_Angeles")},
    )
    at = datetime(2026, 11, 20, tzinfo=UTC)
    charge = dft("FT1|1|T1||20261120100000||CG|11102^B^C4||x|1|1.00")
    ends = {}
    for clinic in ("clinic-west", "clinic-east"):
        (_, visit), _ = mapped(charge, ingestion.context(at, clinic))
        ends[clinic] = visit.completed_at
    assert ends == {
        "clinic-west": datetime(2026, 11, 20, 18, 0, tzinfo=UTC),
        "clinic-east": datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
    }


def test_an_unknown_clinic_zone_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match=r"HL7_CLINIC_TIME_ZONES\[c-1\]"):
        IngestSettings(hl7_clinic_time_zones={"c-1": "Mars/Olympus"})
