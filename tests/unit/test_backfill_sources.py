"""How `revisit backfill` cuts an export folder into ingest submissions (pure, no stack)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from revisit.backfill_sources import (
    SourceError,
    count_records,
    files,
    split,
    submissions,
)

SIU = "MSH|^~\\&|EMA|DERM1|REVISIT|REVISIT|20261124140000||SIU^S12|M-{n}|P|2.5.1\rSCH||A-{n}\r"


def _export(folder: Path) -> None:
    lines = [{"resourceType": "Appointment", "id": f"a-{i}"} for i in range(5)]
    (folder / "Appointment.ndjson").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    patients = [{"resourceType": "Patient", "id": f"p-{i}"} for i in range(3)]
    (folder / "Patient.ndjson").write_text("\n".join(json.dumps(x) for x in patients))
    (folder / "feed.hl7").write_text("\n".join(SIU.format(n=n) for n in range(3)))
    (folder / "events.json").write_text(json.dumps({"events": [{"type": "X"}, {"type": "Y"}]}))
    (folder / ".revisit-backfill-c.json").write_text("{}")  # the checkpoint: never a source
    (folder / "notes.txt").write_text("ignored")


def test_patients_come_first_and_hidden_or_foreign_files_are_left_out(tmp_path: Path) -> None:
    _export(tmp_path)
    assert [p.name for p in files(tmp_path)] == [
        "Patient.ndjson",
        "Appointment.ndjson",
        "events.json",
        "feed.hl7",
    ]


def test_ndjson_goes_as_collection_bundles_of_the_chosen_size(tmp_path: Path) -> None:
    _export(tmp_path)
    subs = list(submissions(tmp_path / "Appointment.ndjson", tmp_path, bundle_size=2))
    assert [(s.key, s.records, s.route) for s in subs] == [
        ("Appointment.ndjson#0", 2, "/fhir/r4"),
        ("Appointment.ndjson#1", 2, "/fhir/r4"),
        ("Appointment.ndjson#2", 1, "/fhir/r4"),
    ]
    bundle = json.loads(subs[0].body)
    assert bundle["type"] == "collection"
    assert [e["fullUrl"] for e in bundle["entry"]] == ["Appointment/a-0", "Appointment/a-1"]
    assert count_records(tmp_path / "Appointment.ndjson") == 5


def test_hl7_messages_are_grouped_and_a_refused_group_splits_into_its_messages(
    tmp_path: Path,
) -> None:
    _export(tmp_path)
    [sub] = list(submissions(tmp_path / "feed.hl7", tmp_path, hl7_per_post=10))
    assert (sub.route, sub.records, sub.content_type) == ("/hl7v2", 3, "text/plain")
    parts = split(sub)
    assert [p.body.decode().split("|")[9] for p in parts] == ["M-0", "M-1", "M-2"]
    assert all(p.records == 1 and p.key == sub.key for p in parts)


def test_native_events_and_a_refused_bundle_split_one_record_each(tmp_path: Path) -> None:
    _export(tmp_path)
    [native] = list(submissions(tmp_path / "events.json", tmp_path))
    assert (native.route, native.records) == ("/events", 2)
    assert [json.loads(p.body)["events"][0]["type"] for p in split(native)] == ["X", "Y"]
    [bundle] = list(submissions(tmp_path / "Patient.ndjson", tmp_path))
    ids = [json.loads(p.body)["entry"][0]["resource"]["id"] for p in split(bundle)]
    assert ids == ["p-0", "p-1", "p-2"]


def test_a_broken_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "Bad.ndjson").write_text('{"resourceType": "Patient"}\nnot json\n')
    with pytest.raises(SourceError, match=r"Bad.ndjson:2: not a JSON resource"):
        list(submissions(tmp_path / "Bad.ndjson", tmp_path))
    (tmp_path / "odd.json").write_text('{"hello": 1}')
    with pytest.raises(SourceError, match="neither a FHIR resource nor native events"):
        list(submissions(tmp_path / "odd.json", tmp_path))
