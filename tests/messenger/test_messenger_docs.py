"""docs/messenger.md shows the default words of every step, exactly as the code has them."""

from __future__ import annotations

from pathlib import Path

from services.messenger.domain.library_doc import END, START, words_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "messenger.md"


def test_the_page_shows_the_default_words_the_code_sends() -> None:
    text = DOC.read_text()
    assert START in text and END in text
    shown = text[text.index(START) : text.index(END) + len(END)]
    assert shown == words_markdown(), (
        "docs/messenger.md is out of date: paste `python -m services.messenger.domain.library_doc`"
    )
    for workflow in ("skin_cancer_surveillance", "cancellation_recovery", "service_recovery"):
        assert f"#### `{workflow}`" in shown
