"""Every third-party sample maps to the events written down in expectations.py (pure mapping)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.ingest import submissions
from services.ingest.domain import MappingContext
from services.ingest.mapping.drafts import finalize
from services.ingest.submissions import Submission
from tests.ingest.expectations import FOLDERS, HL7, Expect

CTX = MappingContext(
    received_at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC), local_zone=ZoneInfo("America/Chicago")
)
CASES = [(folder, name) for folder, table in FOLDERS.items() for name in sorted(table)]


def read_sample(path: Path, folder: str, ctx: MappingContext = CTX) -> Submission:
    raw = path.read_bytes()
    if folder.startswith("hl7v2"):
        [only] = submissions.hl7_body(raw, "clinic-samples", None, ctx, "hl7v2")
        return only
    return submissions.fhir(raw, "clinic-samples", None, ctx)


def check(sub: Submission, expect: Expect) -> None:
    if expect.refused is not None:
        assert sub.refused is not None, "expected a refusal"
        loc, words = expect.refused
        first = sub.refused.problems[0]
        assert (first.loc, words in first.msg) == (loc, True), first
        assert sub.refused.reject is expect.reject
        return
    assert sub.refused is None, sub.refused and sub.refused.problems
    assert sub.mapped is not None
    facts, _versions = finalize(sub.mapped, {})
    assert tuple(f.payload.event_type for f in facts) == expect.events


@pytest.mark.parametrize("folder", sorted(FOLDERS))
def test_every_sample_file_has_a_written_expectation(realdata_dir: Path, folder: str) -> None:
    on_disk = {p.name for p in (realdata_dir / folder).iterdir() if p.is_file()}
    assert on_disk == set(FOLDERS[folder])


@pytest.mark.parametrize(("folder", "name"), CASES, ids=[f"{f}/{n}" for f, n in CASES])
def test_sample_maps_to_its_expected_events_or_a_precise_refusal(
    realdata_dir: Path, folder: str, name: str
) -> None:
    check(read_sample(realdata_dir / folder / name, folder), FOLDERS[folder][name])


def test_the_transaction_example_is_refused_naming_every_entry_we_do_not_take(
    realdata_dir: Path,
) -> None:
    sub = read_sample(realdata_dir / "fhir" / "r4ex_Bundle-bundle-transaction.json", "fhir")
    assert sub.refused is not None
    assert [p.loc for p in sub.refused.problems] == [
        "Bundle.entry[0].Patient.id",
        "Bundle.entry[1].Patient.id",
        "Bundle.entry[3].request.url",  # conditional PUT
        "Bundle.entry[5].request.method",  # DELETE
        "Bundle.entry[6].request.method",  # conditional DELETE
        "Bundle.entry[7].request.url",  # $lookup
        "Bundle.entry[8].request.method",  # GET
        "Bundle.entry[9].request.method",  # GET
    ]


def test_a_training_message_maps_when_the_deployment_takes_training_traffic(
    realdata_dir: Path,
) -> None:
    ctx = MappingContext(
        received_at=CTX.received_at, local_zone=CTX.local_zone, processing_ids=frozenset("PT")
    )
    sub = read_sample(realdata_dir / "hl7v2" / "gcp-hdh_siu_s12_ex1.hl7", "hl7v2", ctx)
    assert sub.mapped is not None
    facts, _ = finalize(sub.mapped, {})
    booked = facts[1].payload
    # SCH-25 is the coded element Sch^Scheduled^SCHEDULING, not a bare "Booked".
    assert booked.event_type == "AppointmentBooked"
    # AIS-4 has no offset: read in the clinic's zone (America/Chicago here).
    assert booked.start == datetime(2022, 4, 29, 16, 10, tzinfo=UTC)
    assert (booked.duration_minutes, booked.provider_id) == (90, "SLATEJ01")


def test_lf_and_cr_copies_of_a_message_map_identically(realdata_dir: Path) -> None:
    for name in HL7:
        lf = read_sample(realdata_dir / "hl7v2" / name, "hl7v2")
        cr = read_sample(realdata_dir / "hl7v2" / "derived_cr" / name, "hl7v2")
        assert (lf.source_key, lf.fingerprint) == (cr.source_key, cr.fingerprint)
        assert (lf.mapped is None) == (cr.mapped is None)
