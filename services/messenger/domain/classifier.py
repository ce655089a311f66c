"""Reply understanding, rule-based: intent, barrier, red flags, slot choice, snooze date.

Order of precedence (the first that holds wins; what else was seen is kept in ``also``):

1. a red flag (bleeding; a new or changing mole; severe pain; swelling, fever or pus; an
   allergic reaction or trouble breathing; an emergency) -> ``red_flag``. Negated mentions
   ("no fever", "the bleeding stopped") are a clinical concern instead: a person still reads them.
2. a carrier keyword (STOP, HELP, START ... see ``keywords``);
3. a free-text revocation ("please stop texting me") -> opt-out;
4. wrong number; 5. no longer needed; 6. choice of an offered slot; 7. a clinical question;
8. later (an explicit postponement); 9. decline; 10. book; 11. later (only a time given);
12. a non-clinical question; 13. unknown.

It works on folded text (lower case, accents removed, emoji turned into words), with patterns
that tolerate the usual typos. An optional model-backed classifier may replace ``classify`` but
only by choosing among these same intents (see ``rewriter.py`` for the same rule on wording).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from services.messenger.domain.dates import snooze_date
from services.messenger.domain.keywords import Keyword, keyword
from services.messenger.domain.red_flags import RedFlag, negated_symptom, red_flags
from services.messenger.domain.reply_words import (
    BARRIERS,
    BOOK,
    CLINICAL,
    DECLINE,
    NO_LONGER_NEEDED,
    POSTPONE,
    QUESTION,
    REVOCATION,
    WRONG_NUMBER,
    normalise,
)
from shared.events.messages import Barrier, ReplyIntent

__all__ = ["RedFlag", "Understanding", "classify", "normalise"]

# Choosing among offered slots: "the second one", "2", "la tercera opción".
_ORDINALS = {
    1: r"\b(?:first|1st|primer[oa]?)\b",
    2: r"\b(?:second|2nd|segund[oa])\b",
    3: r"\b(?:third|3rd|tercer[oa]?)\b",
}
_SLOT_WORDS = {"one": 1, "uno": 1, "una": 1, "two": 2, "dos": 2, "three": 3, "tres": 3}
_SLOT_WORD = re.compile(
    r"^\W*(?:(?:the|la|el|number|numero|option|opcion|#)\s+)?(one|uno|una|two|dos|three|tres)"
    r"\b(?:\s+\w+){0,2}\W*$"
)
_SLOT_DIGIT = re.compile(r"(?<![\d/:$.])\b([1-9])\b(?![\d/:%.]\d)")
_NONE_OF = re.compile(r"\bnone of\b|\bneither\b|\bninguno\b|\bninguna\b")


@dataclass(frozen=True)
class Understanding:
    intent: ReplyIntent
    keyword: Keyword | None = None
    revocation: bool = False  # free text that withdraws consent
    barrier: Barrier | None = None
    red_flags: tuple[RedFlag, ...] = ()
    slot: int | None = None  # 1-based choice among the offered slots
    snooze_until: date | None = None
    also: frozenset[ReplyIntent] = field(default_factory=frozenset)
    confidence: float = 0.9

    @property
    def label(self) -> str:
        """The corpus label: an intent, or opt_out / opt_in for consent changes."""
        if self.intent is ReplyIntent.red_flag:
            return "red_flag"
        if self.keyword in (Keyword.opt_out, Keyword.opt_out_all) or self.revocation:
            return "opt_out"
        if self.keyword is Keyword.opt_in:
            return "opt_in"
        return self.intent.value


def barrier_of(folded: str) -> Barrier | None:
    for barrier, pattern in BARRIERS:
        if pattern.search(folded):
            return barrier
    return None


def chosen_slot(folded: str, offered: int) -> int | None:
    if offered <= 0 or _NONE_OF.search(folded):
        return None
    for n, pattern in _ORDINALS.items():
        if n <= offered and re.search(pattern, folded):
            return n
    if (m := _SLOT_WORD.search(folded)) and _SLOT_WORDS[m.group(1)] <= offered:
        return _SLOT_WORDS[m.group(1)]
    digits = [int(d) for d in _SLOT_DIGIT.findall(folded)]
    picks = [d for d in digits if 1 <= d <= offered]
    return picks[0] if len(picks) == 1 and len(digits) == 1 else None


def classify(
    text: str, *, offered_slots: int = 0, opted_out: bool = False, today: date | None = None
) -> Understanding:
    """What a reply means. ``offered_slots``: how many slots the last offer listed (0: none)."""
    folded = normalise(text)
    flags = red_flags(folded)
    kw = keyword(text)
    revocation = kw is None and bool(REVOCATION.search(folded))
    barrier = barrier_of(folded)
    seen: set[ReplyIntent] = set()
    checks: list[tuple[ReplyIntent, bool]] = [
        (ReplyIntent.wrong_number, bool(WRONG_NUMBER.search(folded))),
        (ReplyIntent.no_longer_needed, bool(NO_LONGER_NEEDED.search(folded))),
        (ReplyIntent.choose_slot, chosen_slot(folded, offered_slots) is not None),
        (ReplyIntent.clinical_concern, bool(CLINICAL.search(folded)) or negated_symptom(folded)),
        (ReplyIntent.later, bool(POSTPONE.search(folded))),
        (ReplyIntent.decline, bool(DECLINE.search(folded))),
        (ReplyIntent.book, bool(BOOK.search(folded))),
        (ReplyIntent.question, bool(QUESTION.search(folded))),
    ]
    for intent, hit in checks:
        if hit:
            seen.add(intent)
    named_time = snooze_date(folded, today or date(2000, 1, 1)) is not None
    if flags:
        return Understanding(
            ReplyIntent.red_flag,
            None,
            revocation,
            barrier,
            flags,
            also=frozenset(seen),
            confidence=0.95,
        )
    if kw is not None and not (kw is Keyword.opt_in and not opted_out):
        intent = ReplyIntent.help if kw is Keyword.help else ReplyIntent.unknown
        return Understanding(intent, kw, confidence=1.0)
    if revocation:
        return Understanding(ReplyIntent.unknown, None, True, barrier, also=frozenset(seen))
    for intent, _hit in checks[:7]:  # everything but the non-clinical question, in order
        if intent in seen:
            return _understood(intent, folded, offered_slots, barrier, seen, today)
    if named_time:
        return _understood(ReplyIntent.later, folded, offered_slots, barrier, seen, today)
    if ReplyIntent.question in seen or (folded.endswith("?") and len(folded.split()) >= 3):
        return _understood(ReplyIntent.question, folded, offered_slots, barrier, seen, today, 0.6)
    return Understanding(ReplyIntent.unknown, barrier=barrier, confidence=0.3)


def _understood(
    intent: ReplyIntent,
    folded: str,
    offered: int,
    barrier: Barrier | None,
    seen: set[ReplyIntent],
    today: date | None,
    confidence: float = 0.85,
) -> Understanding:
    slot = chosen_slot(folded, offered) if intent is ReplyIntent.choose_slot else None
    until = snooze_date(folded, today) if intent is ReplyIntent.later and today else None
    return Understanding(
        intent,
        barrier=barrier,
        slot=slot,
        snooze_until=until,
        also=frozenset(seen - {intent}),
        confidence=confidence,
    )
