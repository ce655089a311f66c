"""The lazy HL7 v2 reader agrees with the ``hl7`` library's parser, field by field.

Ingest reads fields lazily (only the fields mapping needs are ever split) because the library's
eager parse of a whole message cost over half of the CPU per SIU message (bench/ingest.py). The
library stays the reference: for every sample message and for generated ones, every field of
every segment read by mapping has the same repetitions, components and subcomponents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hl7
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.hl7v2.reading import READ, parse, split_messages
from tests.ingest.test_hl7v2_mapping import siu

Shape = list[list[list[str]]]


def library_fields(text: str) -> dict[tuple[str, int, int], Shape]:
    """(segment, ordinal, position) -> the library's field, normalised like ours."""
    out: dict[tuple[str, int, int], Shape] = {}
    ordinals: dict[str, int] = {}
    for segment in hl7.parse(text):
        name = str(segment[0][0])
        ordinals[name] = ordinals.get(name, 0) + 1
        if name not in READ:
            continue
        for position in range(3 if name == "MSH" else 1, len(segment)):
            out[(name, ordinals[name], position)] = _normal(_shape(segment[position]))
    return out


def _shape(field: Any) -> Shape:
    reps: Shape = []
    for item in field:
        if isinstance(item, str):
            reps.append([[item]])
        else:
            reps.append([[c] if isinstance(c, str) else [str(s) for s in c] for c in item])
    return reps


def _normal(reps: Shape) -> Shape:
    stripped = [[[s.strip() for s in comp] for comp in rep] for rep in reps]
    return [rep for rep in stripped if any(any(comp) for comp in rep)]


def ours(text: str) -> dict[tuple[str, int, int], Shape]:
    out = {}
    for seg in parse(text).segments:
        count = len(seg.text.split(seg.seps.field)) + (1 if seg.name == "MSH" else 0)
        for position in range(3 if seg.name == "MSH" else 1, count):
            out[(seg.name, seg.ordinal, position)] = _normal(seg.reps(position))
    return out


def agree(text: str) -> None:
    mine = {k: v for k, v in ours(text).items() if v}
    assert mine == {k: v for k, v in library_fields(text).items() if v}


@pytest.mark.parametrize("folder", ["hl7v2", "hl7v2/derived_cr"])
def test_every_sample_reads_the_same_as_with_the_library(realdata_dir: Path, folder: str) -> None:
    for path in sorted((realdata_dir / folder).glob("*.hl7")):
        for text in split_messages(path.read_text()):
            agree(text)


field_text = st.text(alphabet="ab1 ^~&\\.-", max_size=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(READ - {"MSH"})), st.lists(field_text, max_size=8)),
        max_size=6,
    )
)
def test_generated_messages_read_the_same_as_with_the_library(segments: list[Any]) -> None:
    lines = [siu().split("\r")[0]] + [name + "|" + "|".join(fields) for name, fields in segments]
    agree("\r".join(lines))
