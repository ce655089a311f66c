"""Route-independent rules: service lines, contact forms, zones, intervals and event identity."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingest.domain import Fact, envelopes
from services.ingest.mapping.contacts import language_tag, phone_e164
from services.ingest.mapping.places import zone_from_address
from services.ingest.mapping.service_lines import (
    ServiceLineTable,
    fhir_code_system,
    hl7_code_system,
)
from services.ingest.mapping.timing import spoken_interval
from shared.events.common import CodeSystem, EhrSource, ServiceLine, SourceSystem
from shared.events.ehr import PatientUpserted

T0 = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("system", "code", "line"),
    [
        (CodeSystem.cpt, "17313", ServiceLine.mohs),
        (CodeSystem.cpt, "96910", ServiceLine.phototherapy),
        (CodeSystem.hcpcs, "j0585", ServiceLine.neurotoxin),
        (CodeSystem.local, "Skin check", ServiceLine.skin_check),
        (CodeSystem.local, "chem-peel", ServiceLine.chemical_peel),
        (CodeSystem.cpt, "99999", None),
        (None, "17313", None),  # a diagnosis or lab code system is never consulted
    ],
)
def test_service_lines_come_from_exact_codes_only(
    system: CodeSystem | None, code: str, line: ServiceLine | None
) -> None:
    assert ServiceLineTable().lookup(system, code) == line


def test_unknown_codes_are_unspecified_never_a_guess_and_a_deployment_can_add_its_own() -> None:
    table = ServiceLineTable({"local|BTX-20": "neurotoxin"})
    assert ServiceLineTable().first([(CodeSystem.local, "BTX-20")]) is ServiceLine.unspecified
    assert table.first([(CodeSystem.local, "btx 20")]) is ServiceLine.neurotoxin


@pytest.mark.parametrize(
    ("uri", "system"),
    [
        ("http://www.ama-assn.org/go/cpt", CodeSystem.cpt),
        ("http://snomed.info/sct", CodeSystem.snomed_ct),
        ("http://hl7.org/fhir/sid/icd-10-cm", None),
        ("http://loinc.org", None),
        ("http://terminology.hl7.org/CodeSystem/v2-0276", None),
        ("https://ehr.example/fee-schedule", CodeSystem.local),
        (None, CodeSystem.local),
    ],
)
def test_fhir_code_systems_are_classified(uri: str | None, system: CodeSystem | None) -> None:
    assert fhir_code_system(uri) == system


def test_hl7_coding_systems_are_classified() -> None:
    assert [hl7_code_system(n) for n in ["C4", "SCT", "I10", "LN", "L", "99DERM"]] == [
        CodeSystem.cpt,
        CodeSystem.snomed_ct,
        None,
        None,
        CodeSystem.local,
        CodeSystem.local,
    ]


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("(512) 555-0101", "+15125550101"),
        ("1-512-555-0101 x12", "+15125550101"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("(03) 5555 6473", None),  # no country: not guessed
        ("555-0101", None),
        ("", None),
    ],
)
def test_phone_numbers_become_e164_or_are_dropped(raw: str, e164: str | None) -> None:
    assert phone_e164(raw) == e164


def test_languages_become_bcp47_tags() -> None:
    assert [language_tag(v) for v in ["eng", "ENG", "es-MX", "ara", "English-us", ""]] == [
        "en",
        "en",
        "es-MX",
        "ar",
        None,
        None,
    ]


def test_a_us_address_gives_the_state_zone_and_a_foreign_one_gives_none() -> None:
    assert zone_from_address("TX", "USA") == "America/Chicago"
    assert zone_from_address("Massachusetts", None) == "America/New_York"
    assert zone_from_address("Vic", None) is None
    assert zone_from_address("NY", "Canada") is None


def test_plan_timing_words_become_days() -> None:
    assert spoken_interval("in 6 months") == (180, False)
    assert spoken_interval("every 2 weeks") == (14, True)
    assert spoken_interval("annually") == (365, True)
    assert spoken_interval("when needed") is None


def _fact(name: str) -> Fact:
    source = EhrSource(system=SourceSystem.json, record_id="p-1", source_updated_at=T0)
    return Fact("p-1", PatientUpserted(source=source, given_name=name), T0)


def test_the_same_facts_of_the_same_message_get_the_same_event_ids() -> None:
    first = envelopes([_fact("Ana")], clinic_id="c", source_key="k", recorded_at=T0)
    again = envelopes([_fact("Ana")], clinic_id="c", source_key="k", recorded_at=T0)
    assert [e.event_id for e in first] == [e.event_id for e in again]


def test_a_corrected_fact_gets_a_new_id_and_twin_facts_in_one_message_get_two() -> None:
    [before] = envelopes([_fact("Ana")], clinic_id="c", source_key="k", recorded_at=T0)
    [after] = envelopes([_fact("Anna")], clinic_id="c", source_key="k", recorded_at=T0)
    twins = envelopes([_fact("Ana"), _fact("Ana")], clinic_id="c", source_key="k", recorded_at=T0)
    assert before.event_id != after.event_id
    assert len({e.event_id for e in twins}) == 2
    other_clinic = envelopes([_fact("Ana")], clinic_id="d", source_key="k", recorded_at=T0)
    assert other_clinic[0].event_id != before.event_id


def test_ingest_settings_refuse_unknown_processing_ids_and_service_line_codes() -> None:
    from pydantic import ValidationError

    from services.ingest.settings import IngestSettings

    assert IngestSettings(hl7_processing_ids="t, p").processing_ids == {"P", "T"}
    for bad in ({"hl7_processing_ids": "X"}, {"service_line_codes": {"icd10|L40.0": "mohs"}}):
        with pytest.raises(ValidationError):
            IngestSettings(**bad)
    with pytest.raises(ValidationError):
        IngestSettings(service_line_codes={"local|BTX": "botox"})
