"""docs/segmenter.md gives the segment priority the code uses (and the API returns)."""

from __future__ import annotations

import re
from pathlib import Path

from services.segmenter.domain.params import DEFAULT_PRIORITY, ClinicParams

DOC = Path(__file__).resolve().parents[2] / "docs" / "segmenter.md"


def test_the_documented_priority_is_the_one_the_code_uses() -> None:
    text = DOC.read_text()
    block = text[text.index("<!-- priority:start -->") : text.index("<!-- priority:end -->")]
    documented = re.findall(r"^\d+\. `(\w+)`$", block, re.M)
    assert documented == [s.value for s in DEFAULT_PRIORITY]
    assert [s.value for s in ClinicParams().general.priority] == documented
    # A fresh cancellation comes before a late series session, as the page says.
    assert documented.index("cancelled_not_rescheduled") < documented.index("series_incomplete")
