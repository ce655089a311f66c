"""An HL7 v2 message and Microsoft FHIR-Converter's output of it yield the same canonical events.

The routes name records by their own ids: HL7 by the filler appointment number, PID-3 and the
AIP/AIL codes; FHIR by the resource ids the converter minted. Each pair's table below says which
FHIR resource id is which HL7 id (read off the converter's identifiers); with ids translated,
every event must be equal field for field, source timestamps included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.ingest.mapping.drafts import finalize
from tests.ingest.test_realdata_mapping import read_sample

SAME_RECORDS = {
    "9e909e52-61a1-be50-1878-a12ef8c36346": "PATID1234",  # Patient (PID-3, MR)
    "b7121f46-cf50-5cec-7cfb-5de8e42b82d2": "36996",  # Appointment (SCH-2 filler id, FILL)
    "cf8dbd4d-8d1c-57fc-1609-c069ee81b4cb": "1210",  # Practitioner (AIP-3)
    "a0594ee2-fcaa-cab0-e434-8c015b6b539d": "055",  # Location (AIL-3 point of care)
}
PAIRS = ["SIU-S12-01", "SIU-S15-01", "SIU-S26-01"]


def canonical(sub: Any, translate: dict[str, str]) -> list[dict[str, Any]]:
    facts, _ = finalize(sub.mapped, {})
    out = []
    for fact in facts:
        body = fact.payload.model_dump(mode="json")
        body["source"].pop("system")
        # Each route names an assigning authority its own way (HL7 CX-4 namespace, the
        # converter's made-up system URI): compared apart, by value and type.
        body.pop("identifiers", None)
        out.append(
            _translated(
                {"type": fact.payload.event_type, "patient": fact.patient_id, **body}, translate
            )
        )
    return out


def _translated(value: Any, translate: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _translated(v, translate) for k, v in value.items()}
    if isinstance(value, list):
        return [_translated(v, translate) for v in value]
    return translate.get(value, value) if isinstance(value, str) else value


@pytest.mark.parametrize("pair", PAIRS)
def test_hl7_message_and_its_fhir_conversion_give_the_same_events(
    realdata_dir: Path, pair: str
) -> None:
    hl7 = read_sample(realdata_dir / "hl7v2" / f"msfc_{pair}.hl7", "hl7v2")
    fhir = read_sample(realdata_dir / "fhir" / f"msfc_{pair}-expected.bundle.json", "fhir")
    by_hl7 = canonical(hl7, {})
    by_fhir = canonical(fhir, SAME_RECORDS)
    assert [e["type"] for e in by_hl7] == [e["type"] for e in by_fhir]
    assert by_hl7 == by_fhir


def record_numbers(sub: Any) -> set[tuple[str, str | None]]:
    facts, _ = finalize(sub.mapped, {})
    return {
        (i.value, i.type)
        for fact in facts
        if fact.payload.event_type == "PatientUpserted"
        for i in fact.payload.identifiers
    }


@pytest.mark.parametrize("pair", PAIRS)
def test_both_routes_carry_the_patients_record_number_and_never_the_ssn(
    realdata_dir: Path, pair: str
) -> None:
    hl7 = record_numbers(read_sample(realdata_dir / "hl7v2" / f"msfc_{pair}.hl7", "hl7v2"))
    fhir = record_numbers(
        read_sample(realdata_dir / "fhir" / f"msfc_{pair}-expected.bundle.json", "fhir")
    )
    assert ("PATID1234", "MR") in hl7
    assert hl7 <= fhir  # the converter also keeps PID-2 and PID-4
    # Both messages carry a social security number and a driver's licence: neither travels.
    assert not {t for _v, t in hl7 | fhir} & {"SS", "SB", "DL"}
    assert not {v for v, _t in hl7 | fhir} & {"123456789", "PSSN123121234", "DLN-123"}


def test_the_pairs_really_differ_in_ids_before_translation(realdata_dir: Path) -> None:
    hl7 = read_sample(realdata_dir / "hl7v2" / "msfc_SIU-S12-01.hl7", "hl7v2")
    fhir = read_sample(realdata_dir / "fhir" / "msfc_SIU-S12-01-expected.bundle.json", "fhir")
    assert canonical(hl7, {}) != canonical(fhir, {})
