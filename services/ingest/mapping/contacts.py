"""Patient contact details as EHRs write them -> the canonical forms events carry.

Phone numbers become E.164 (a bare 10-digit number is read as North American, the only region
the practices we serve use); a number that cannot be made E.164 is dropped, never guessed.
Languages become BCP 47 tags (ISO 639-2 codes from HL7 table 0296 become their 639-1 form).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from shared.events.common import Contact, ContactKind, ContactUse

_DIGITS = re.compile(r"\d")
_EXTENSION = re.compile(r"(?i)\s*(?:x|ext\.?|extension|#)\s*\d+\s*$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
MAX_CONTACTS = 20

# ISO 639-2 (bibliographic and terminology) -> ISO 639-1, for the languages US practices meet.
_ISO639_2 = {
    "eng": "en",
    "spa": "es",
    "ara": "ar",
    "fra": "fr",
    "fre": "fr",
    "deu": "de",
    "ger": "de",
    "zho": "zh",
    "chi": "zh",
    "vie": "vi",
    "kor": "ko",
    "rus": "ru",
    "por": "pt",
    "ita": "it",
    "jpn": "ja",
    "hin": "hi",
    "tgl": "tl",
    "pol": "pl",
    "hat": "ht",
    "fas": "fa",
    "per": "fa",
    "urd": "ur",
    "ben": "bn",
    "guj": "gu",
    "pan": "pa",
    "heb": "he",
    "ell": "el",
    "gre": "el",
    "tur": "tr",
    "ukr": "uk",
    "tha": "th",
    "khm": "km",
    "lao": "lo",
    "som": "so",
    "amh": "am",
    "nep": "ne",
    "yid": "yi",
    "srp": "sr",
    "hrv": "hr",
    "bos": "bs",
    "alb": "sq",
    "sqi": "sq",
    "arm": "hy",
    "hye": "hy",
    "ron": "ro",
    "rum": "ro",
    "nld": "nl",
    "dut": "nl",
    "swe": "sv",
}


def phone_e164(raw: str | None) -> str | None:
    """``(512) 555-0101`` -> ``+15125550101``; None when the number is not a whole one."""
    if not raw:
        return None
    text = _EXTENSION.sub("", raw.strip())
    digits = "".join(_DIGITS.findall(text))
    if text.startswith("+") or text.startswith("00"):
        candidate = "+" + (digits[2:] if text.startswith("00") else digits)
    elif len(digits) == 10 and digits[0] in "23456789":
        candidate = "+1" + digits
    elif len(digits) == 11 and digits[0] == "1" and digits[1] in "23456789":
        candidate = "+" + digits
    else:
        return None
    return candidate if _E164.match(candidate) else None


def email_address(raw: str | None) -> str | None:
    value = (raw or "").strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    return value if len(value) <= 254 and _EMAIL.match(value) else None


def language_tag(raw: str | None) -> str | None:
    """A BCP 47 tag from ``en``, ``en-US``, ``eng`` or ``ENG``; None for anything else."""
    value = (raw or "").strip().replace("_", "-")
    if not value or not _LANGUAGE.match(value):
        return None
    primary, _, rest = value.partition("-")
    primary = primary.lower()
    primary = _ISO639_2.get(primary, primary)
    return f"{primary}-{rest}" if rest else primary


@dataclass(frozen=True)
class ContactCandidate:
    """A contact as read from the record, before ranking: ``rank`` is the source's own."""

    kind: ContactKind
    value: str
    use: ContactUse
    rank: int | None = None


def ranked(candidates: Iterable[ContactCandidate]) -> tuple[Contact, ...]:
    """Contacts in the source's preference order, renumbered 1..n, duplicates removed.

    The source's ranks only order the list (FHIR ``rank``, HL7 XTN-18 preference order); an
    unranked contact follows the ranked ones in the order it was written.
    """
    unique: dict[tuple[ContactKind, str], tuple[int, int, ContactCandidate]] = {}
    for position, candidate in enumerate(candidates):
        key = (candidate.kind, candidate.value.lower())
        order = (candidate.rank if candidate.rank and candidate.rank > 0 else 10_000, position)
        if key not in unique or order < unique[key][:2]:
            unique[key] = (*order, candidate)
    chosen = sorted(unique.values(), key=lambda item: item[:2])[:MAX_CONTACTS]
    return tuple(
        Contact(kind=c.kind, value=c.value, use=c.use, rank=index)
        for index, (_, _, c) in enumerate(chosen, start=1)
    )
