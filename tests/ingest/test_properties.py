"""Property tests of the pure mapping: whatever arrives, it is mapped or refused - never a crash,
never half a message - and a refusal never repeats a value from the message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest import submissions
from services.ingest.domain import MappingContext, Refused
from services.ingest.mapping.drafts import finalize
from services.ingest.submissions import Submission
from tests.ingest.test_fhir_mapping import appointment, bundle
from tests.ingest.test_hl7v2_mapping import siu

CTX = MappingContext(
    received_at=datetime(2026, 11, 20, tzinfo=UTC), local_zone=ZoneInfo("America/Chicago")
)
MARKER = "QZXV9SECRET"
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


def whole_or_nothing(subs: list[Submission]) -> None:
    """Each submission is refused, or maps to final facts (or a refusal) as a whole."""
    for sub in subs:
        assert (sub.mapped is None) != (sub.refused is None)
        if sub.mapped is not None:
            try:
                finalize(sub.mapped, {})
            except Refused as exc:
                assert exc.problems


def hl7(raw: bytes) -> list[Submission]:
    try:
        return submissions.hl7_body(raw, "c", None, CTX, "hl7v2")
    except Refused as exc:
        assert exc.problems
        return []


def fhir(raw: bytes) -> list[Submission]:
    try:
        return [submissions.fhir(raw, "c", None, CTX)]
    except Refused as exc:
        assert exc.problems
        return []


@FAST
@given(st.binary(max_size=400))
def test_random_bytes_as_hl7_are_refused_or_mapped_never_a_crash(raw: bytes) -> None:
    whole_or_nothing(hl7(raw))
    whole_or_nothing(hl7(b"MSH|^~\\&|" + raw))


@FAST
@given(st.data())
def test_any_truncation_or_corruption_of_a_real_message_is_refused_or_mapped(data: Any) -> None:
    text = siu(trigger=data.draw(st.sampled_from(["S12", "S13", "S15", "S17", "S26"])))
    cut = data.draw(st.integers(0, len(text)))
    whole_or_nothing(hl7(text[:cut].encode()))
    at = data.draw(st.integers(0, len(text) - 1))
    noise = data.draw(st.text(alphabet="|^~\\&\r\n0123456789ABZ-+. ", max_size=6))
    whole_or_nothing(hl7((text[:at] + noise + text[at:]).encode()))


@FAST
@given(json_values)
def test_random_json_as_fhir_is_refused_or_mapped_never_a_crash(doc: Any) -> None:
    whole_or_nothing(fhir(json.dumps(doc).encode()))


@FAST
@given(st.data())
def test_a_bundle_with_a_corrupted_entry_is_refused_whole_or_mapped_whole(data: Any) -> None:
    entry = appointment(id="a-2")
    field = data.draw(st.sampled_from(sorted(entry)))
    entry[field] = data.draw(json_values)
    doc = bundle(appointment(), entry)
    [sub] = fhir(json.dumps(doc).encode()) or [None]
    if sub is None:
        return
    whole_or_nothing([sub])
    if sub.mapped is not None and sub.refused is None:
        try:
            facts, _ = finalize(sub.mapped, {})
        except Refused:
            return
        assert len(facts) in (1, 2)  # the corrupted entry may be a legitimate non-booking


@FAST
@given(st.integers(0, 4000))
def test_truncated_fhir_json_is_refused_as_unreadable(cut: int) -> None:
    raw = json.dumps(bundle(appointment(), appointment(id="a-2"))).encode()
    subs = fhir(raw[: min(cut, len(raw) - 1)])
    assert subs == []


@FAST
@given(st.sampled_from(["pid3", "start", "status", "reason", "version", "service"]), st.data())
def test_a_refusal_never_repeats_a_value_from_the_message(field: str, data: Any) -> None:
    junk = MARKER + data.draw(st.text(alphabet="0123456789-:T", max_size=4))
    [sub] = hl7(siu(**{field: junk}).encode()) or [None]
    if sub is None or sub.refused is None:
        return
    assert all(MARKER not in p.loc + p.msg for p in sub.refused.problems)


@FAST
@given(json_values)
def test_random_native_json_is_refused_or_mapped_never_a_crash(doc: Any) -> None:
    try:
        sub = submissions.native(json.dumps(doc).encode(), "c", None, CTX)
    except Refused:
        return
    whole_or_nothing([sub])


@pytest.mark.parametrize("folder", ["hl7v2", "fhir"])
def test_every_prefix_of_every_sample_is_refused_or_mapped(realdata_dir: Path, folder: str) -> None:
    for path in sorted((realdata_dir / folder).glob("*.*")):
        raw = path.read_bytes()
        for cut in range(0, len(raw), max(1, len(raw) // 25)):
            whole_or_nothing(hl7(raw[:cut]) if folder == "hl7v2" else fhir(raw[:cut]))
