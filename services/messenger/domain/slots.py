"""Which of the offered times a reply names: "2", "the second one", "la tercera opción"."""

from __future__ import annotations

import re

_ORDINALS = {
    1: r"\b(?:first|1st|primer[oa]?|earliest)\b",
    2: r"\b(?:second|2nd|segund[oa]|middle)\b",
    3: r"\b(?:third|3rd|tercer[oa]?)\b",
}
_LAST = re.compile(r"\b(?:the last one|last option|la ultima|el ultimo|latest one)\b")
_SLOT_WORDS = {"one": 1, "uno": 1, "una": 1, "two": 2, "dos": 2, "three": 3, "tres": 3}
_SLOT_WORD = re.compile(
    r"(?:^|\b(?:the|la|el|number|numero|option|opcion|#|no\.?)\s+)(one|uno|una|two|dos|three|tres)"
    r"\b"
)
_SLOT_DIGIT = re.compile(
    r"(?<![\d/:$.])\b([1-9])\b(?![\d/:%.]\d)(?!\s*(?:am|pm|weeks?|months?|days?|semanas?|meses|"
    r"dias?|hours?|horas?|times?|veces|x)\b)"
)
_NONE_OF = re.compile(r"\bnone of\b|\bneither\b|\bninguno\b|\bninguna\b|\bnot any\b")
# A choice said first: "3 bc i have class till 2", "la segunda, la primera no".
_LEADING = re.compile(
    r"^\W*(?:(?:the|la|el|option|opcion|number|numero|#|no\.?)\s*)?"
    r"([1-3]|first|1st|primer[oa]?|second|2nd|segund[oa]|third|3rd|tercer[oa]?|one|uno|una|two|"
    r"dos|three|tres)\b(?!\s*(?:am|pm|weeks?|months?|days?|semanas?|meses|dias?|:\d))"
)
_WORD_VALUE = {
    **_SLOT_WORDS,
    **dict.fromkeys(("first", "1st", "primer", "primero", "primera"), 1),
    **dict.fromkeys(("second", "2nd", "segundo", "segunda"), 2),
    **dict.fromkeys(("third", "3rd", "tercer", "tercero", "tercera"), 3),
}


def chosen_slot(folded: str, offered: int) -> int | None:
    """The offered slot a reply names (1-based), or None when it names none or several."""
    if offered <= 0 or _NONE_OF.search(folded):
        return None
    if m := _LEADING.search(folded):
        word = m.group(1)
        value = int(word) if word.isdigit() else _WORD_VALUE[word]
        if value <= offered:
            return value
    named = {n for n, pattern in _ORDINALS.items() if n <= offered and re.search(pattern, folded)}
    if _LAST.search(folded):
        named.add(offered)
    named |= {_SLOT_WORDS[m] for m in _SLOT_WORD.findall(folded) if _SLOT_WORDS[m] <= offered}
    digits = {int(d) for d in _SLOT_DIGIT.findall(folded)}
    if digits and all(1 <= d <= offered for d in digits):
        named |= digits
    return named.pop() if len(named) == 1 else None
