"""What the model sees of a reply besides its characters: the rules' findings, as features.

The rules know things a linear model over n-grams learns slowly from 1,800 examples: that a
clause revokes, that a symptom is negated, that "2" names an offered slot, that a date is
named. Each finding becomes a named feature, and the model learns how much it weighs for each
head. The intent and barrier also get the words of the reply without the clauses that revoke or
raise a red flag ("can't come this week, out of town, but the wound is leaking"), prefixed so
they count apart: what the patient asks for is usually in the other clauses.
"""

from __future__ import annotations

from datetime import date

from services.messenger.domain.consent import read_consent
from services.messenger.domain.dates import snooze_date
from services.messenger.domain.red_flags import Safety, clauses, read_safety
from services.messenger.domain.reply_words import BARRIERS, normalise
from services.messenger.domain.reply_words import INTENT_WORDS as WORDS
from services.messenger.domain.slots import chosen_slot

_SOME_DAY = date(2026, 3, 2)  # any fixed day: only whether a time is named matters here


def rule_features(text: str, folded: str, *, offered_slots: int, opted_out: bool) -> set[str]:
    names: set[str] = set()
    consent = read_consent(text, opted_out=opted_out)
    if consent.revoke:
        names.add("r revoke " + (consent.rule or ""))
    if consent.opt_in:
        names.add("r opt in")
    if consent.help:
        names.add("r help")
    safety = read_safety(folded)
    names.add(f"r safety {safety.level.name}")
    names.update(f"r flag {f.value}" for f in safety.flags)
    names.update(f"r aside {f.value}" for f in safety.set_aside)
    for name, pattern in WORDS.items():
        if pattern.search(folded):
            names.add(f"r {name}")
    for barrier, pattern in BARRIERS:
        if pattern.search(folded):
            names.add(f"r barrier {barrier.value}")
    if snooze_date(folded, _SOME_DAY) is not None:
        names.add("r names a time")
    if offered_slots and chosen_slot(folded, offered_slots) is not None:
        names.add("r names a slot")
    return names


def asking_text(text: str) -> str:
    """The folded reply without its clauses that revoke or raise a red flag (the whole reply
    when every clause does, or when none does)."""
    folded = normalise(text)
    if not read_consent(text).revoke and read_safety(folded).level is not Safety.red_flag:
        return folded
    parts = clauses(folded)
    kept = [
        c
        for c in parts
        if not read_consent(c).revoke and read_safety(c).level is not Safety.red_flag
    ]
    return " , ".join(kept) if kept else normalise(text)
