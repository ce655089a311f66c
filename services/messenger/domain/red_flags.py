"""The clinical-safety layer's rules: red flags and clinical content in a reply, with misspellings
corrected, negated or resolved mentions set aside, and nothing else able to remove a red flag.

1. The folded reply's words are corrected towards the safety vocabulary ("bleding", "swolen",
   "infectd", "hinchasón"): one edit (or a swap of two letters) away, for words of five
   letters or more that are not ordinary words themselves.
2. The reply is cut into clauses (sentences, and "but", "pero", "also"...), so that "no fever
   but my lip is swollen" keeps its red flag.
3. A red-flag mention negated just before ("no bleeding", "sin fiebre") or resolved just after
   ("the swelling went down", "bleeding stopped") is clinical, not urgent: a person still reads
   it. "It won't stop bleeding", "still oozing" are not negations.
4. Clinical (non-urgent) content: medications, symptoms, results, "is this normal?".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from functools import cache, lru_cache

from services.messenger.domain.safety_words import (
    AFTER_TREATMENT,
    BENIGN,
    CLINICAL,
    FLAGS,
    INNER_NEGATION,
    MILD,
    MOLE,
    MOLE_CHANGE,
    NEGATION_BEFORE,
    RESOLVED_AFTER,
    STILL_ACTIVE,
    STRONG_MOLE,
    RedFlag,
)

__all__ = ["RedFlag", "Safety", "SafetyReading", "canonical", "read_safety"]


class Safety(IntEnum):
    """Ordered: a later layer may raise the level, never lower it."""

    none = 0
    clinical = 1
    red_flag = 2

    @property
    def label(self) -> str:
        return self.name


# The words misspellings are corrected to (five letters or more; short words are too easily
# confused with ordinary ones).
# fmt: off
VOCABULARY = (
    "bleeding", "bleeds", "blood", "bloody", "swollen", "swelling", "infected", "infection",
    "oozing", "fever", "chills", "breathe", "breathing", "throat", "tongue", "eyelid",
    "eyelids", "drooping", "droopy", "blurry", "blurred", "vision", "double", "blister",
    "blisters", "depressed", "depression", "suicidal", "suicide", "headache", "stomach",
    "fainted", "fainting", "emergency", "growing", "changing", "bigger", "darker", "itching",
    "itchy", "stitches", "wound", "opened", "spreading", "streaks", "severe", "worse",
    "worsening", "terrible", "unbearable", "excruciating", "allergic", "reaction", "hives",
    "tightness", "swallow", "vomiting", "numbness", "throbbing", "bruising", "dizzy",
    "incision", "sangrado", "sangrando", "sangra", "hinchado", "hinchada", "hinchazon",
    "infeccion", "infectado", "infectada", "fiebre", "escalofrios", "respirar", "garganta",
    "parpado", "borrosa", "ampollas", "ampolla", "quemadura", "deprimido", "deprimida",
    "depresion", "suicidio", "estomago", "desmaye", "emergencia", "creciendo", "cambiando",
    "comezon", "herida", "abierta", "lunar", "doloroso", "insoportable", "inflamado",
    "inflamada", "purple", "white",
)
# fmt: on
# Ordinary words one edit away from a vocabulary word, which must stay themselves.
# fmt: off
ORDINARY = frozenset({
    "while", "whole", "where", "there", "these", "those", "think", "thing", "throw", "thought",
    "tongues", "bleed", "blond", "bigger", "double", "doubt", "fever", "never", "clever",
    "sever", "seven", "swallow", "shallow", "hollow", "wonder", "worst", "worth", "words",
    "world", "would", "whites", "write", "written", "waiting", "wanting", "bloom", "brood",
    "breath", "breathes", "stitch", "watch", "spending", "sending", "sanding", "landing",
    "reading", "heading", "seeding", "feeding", "needing", "leading", "blending", "bending",
    "beading", "sangria", "sangre", "horse", "other", "wither", "weather", "whether", "blinds",
    "purpose", "pursue", "puree", "hives", "lives", "gives", "wives", "drooping", "blessed",
    "blister", "bluster", "dizzy", "fuzzy", "busy", "opened", "opener", "chillin", "chilli",
    "changes", "charging", "hanging", "ranging", "darken", "dinner", "winner", "hearing",
    "hearings", "graving", "grouping", "growling", "throats", "threat", "throne", "tough",
    "through", "lunar", "lunes", "lunch", "injection", "injections", "injected", "inyeccion",
    "inyecciones", "inyectar", "reflection", "infections", "swimming", "doble", "doblar",
})
# fmt: on
_VOCABULARY = frozenset(VOCABULARY)
# Every red-flag pattern at once: most clauses name none, and one search says so.
_ANY_FLAG = re.compile("|".join(f"(?:{p.pattern})" for p in FLAGS.values()))
_SPLIT = re.compile(
    r"[.;!?\n]+|,|\b(?:but|pero|also|although|though|however|tambien|ademas|aunque|btw|plus|"
    r"and then|otherwise|except|anyway)\b"
)
_TOKEN = re.compile(r"[a-z]+")


@cache
def _deletions() -> dict[str, frozenset[str]]:
    index: dict[str, set[str]] = {}
    for word in VOCABULARY:
        for key in {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}:
            index.setdefault(key, set()).add(word)
    return {k: frozenset(v) for k, v in index.items()}


def _one_edit(a: str, b: str) -> bool:
    """Damerau distance <= 1 (substitution, insertion, deletion or one swap of neighbours)."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]]
            and (a[diff[1]] == b[diff[0]])
        )
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


@cache
def _correct(word: str) -> str:
    if len(word) < 5 or word in ORDINARY or word in _VOCABULARY:
        return word
    index = _deletions()
    candidates: set[str] = set(index.get(word, ()))
    for i in range(len(word)):
        candidates |= index.get(word[:i] + word[i + 1 :], frozenset())
    matches = sorted(c for c in candidates if _one_edit(word, c))
    return matches[0] if len(matches) == 1 else word


def canonical(folded: str) -> str:
    """The folded text with misspellings of the safety vocabulary corrected."""
    return _TOKEN.sub(lambda m: _correct(m.group(0)), folded)


@dataclass(frozen=True)
class SafetyReading:
    level: Safety = Safety.none
    flags: frozenset[RedFlag] = frozenset()
    set_aside: frozenset[RedFlag] = frozenset()  # mentioned, but negated or resolved


def clauses(text: str) -> list[str]:
    return [c.strip() for c in _SPLIT.split(text) if c and c.strip()]


def _negated(clause: str, start: int, end: int, *, inside: bool = True) -> bool:
    if STILL_ACTIVE.search(clause):
        return False
    before = clause[max(0, start - 40) : start]
    words = clause[start:end]
    return bool(
        NEGATION_BEFORE.search(before)
        or RESOLVED_AFTER.search(clause[end:])
        or (inside and " " in words and INNER_NEGATION.search(words))
    )


def _mild_only(flag: RedFlag, clause: str) -> bool:
    """A mild, stable swelling or bleeding without worsening is clinical, not urgent."""
    return (
        flag in (RedFlag.bleeding, RedFlag.swelling, RedFlag.burn_or_blister)
        and bool(MILD.search(clause))
        and not STILL_ACTIVE.search(clause)
    )


def flags_in(clause: str) -> tuple[set[RedFlag], set[RedFlag]]:
    """(red flags, red flags set aside) named in one clause."""
    found: set[RedFlag] = set()
    aside: set[RedFlag] = set()
    clause = BENIGN.sub(" ", clause)
    for flag, pattern in FLAGS.items() if _ANY_FLAG.search(clause) else ():
        for m in pattern.finditer(clause):
            if _negated(clause, m.start(), m.end()) or _mild_only(flag, clause):
                aside.add(flag)
            else:
                found.add(flag)
                break
    mole = MOLE.search(clause)
    if mole and AFTER_TREATMENT.search(clause) and not STRONG_MOLE.search(clause):
        mole = None
    if mole and (change := MOLE_CHANGE.search(clause)):
        start, end = min(mole.start(), change.start()), max(mole.end(), change.end())
        if end - start <= 90:
            negated = _negated(clause, start, end, inside=False) or _negated(
                clause, change.start(), change.end()
            )
            (aside if negated else found).add(RedFlag.changing_mole)
    return found, aside - found


@lru_cache(maxsize=4096)
def read_safety(folded: str) -> SafetyReading:
    """Red flags and clinical content of a folded reply (see the module's docstring)."""
    text = canonical(folded)
    found: set[RedFlag] = set()
    aside: set[RedFlag] = set()
    for clause in clauses(text):
        f, a = flags_in(clause)
        found |= f
        aside |= a
    if found:
        return SafetyReading(Safety.red_flag, frozenset(found), frozenset(aside - found))
    if aside or CLINICAL.search(text):
        return SafetyReading(Safety.clinical, frozenset(), frozenset(aside))
    return SafetyReading()
