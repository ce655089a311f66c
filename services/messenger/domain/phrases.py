"""A practice's own phrasing, without retraining: phrases that mean a revocation, a red flag,
clinical content, or an intent, for one clinic or for all (``"*"``).

    {"*": {"revoke": ["take me off the recall list"]},
     "clinic-a": {"red_flag": ["graft looks black"], "book": ["put me on the books"]}}

A phrase matches the reply's folded words anywhere (case, accents and punctuation aside). Like
every layer it can only add: a revocation, a red flag or clinical content it names is kept by
the merge, and an intent it names is read with full confidence. Loaded from the file
``REVISIT_MESSENGER_REPLY_PHRASES`` names, refused with the place of any mistake.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from services.messenger.domain.red_flags import RedFlag, Safety
from services.messenger.domain.reply_words import normalise
from services.messenger.domain.understanding import Reading
from shared.events.messages import ReplyIntent

INTENTS = ("book", "later", "decline", "no_longer_needed", "question", "wrong_number")
KINDS = ("revoke", "red_flag", "clinical", *INTENTS)


class PhraseError(ValueError):
    pass


def _pattern(phrases: list[str]) -> re.Pattern[str] | None:
    words = [re.escape(normalise(p)) for p in phrases if normalise(p)]
    return re.compile(r"(?<!\w)(?:" + "|".join(words) + r")(?!\w)") if words else None


@dataclass(frozen=True)
class PhraseBook:
    by_clinic: Mapping[str, Mapping[str, re.Pattern[str]]]

    @classmethod
    def parse(cls, raw: object) -> PhraseBook:
        if not isinstance(raw, dict):
            raise PhraseError("phrases: must be an object of clinics")
        book: dict[str, dict[str, re.Pattern[str]]] = {}
        for clinic, kinds in raw.items():
            if not isinstance(kinds, dict):
                raise PhraseError(f"phrases.{clinic}: must be an object of kinds")
            book[clinic] = {}
            for kind, phrases in kinds.items():
                if kind not in KINDS:
                    raise PhraseError(f"phrases.{clinic}.{kind}: not one of {', '.join(KINDS)}")
                if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
                    raise PhraseError(f"phrases.{clinic}.{kind}: must be a list of strings")
                if (pattern := _pattern(phrases)) is not None:
                    book[clinic][kind] = pattern
        return cls(book)

    def reading(self, text: str, clinic_id: str | None) -> Reading | None:
        folded = normalise(text)
        found: set[str] = set()
        for clinic in ("*", clinic_id):
            for kind, pattern in self.by_clinic.get(clinic or "", {}).items():
                if pattern.search(folded):
                    found.add(kind)
        if not found:
            return None
        intent = next((ReplyIntent(k) for k in INTENTS if k in found), None)
        safety = (
            Safety.red_flag
            if "red_flag" in found
            else Safety.clinical
            if "clinical" in found
            else Safety.none
        )
        return Reading(
            "rules",
            revoke="revoke" in found,
            safety=safety,
            red_flags=frozenset({RedFlag.other}) if safety is Safety.red_flag else frozenset(),
            intent=intent,
            intent_confidence=1.0 if intent else 0.0,
        )
