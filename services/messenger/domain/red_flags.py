"""Red flags: words that may mean a patient needs a person now (bleeding; a new or changing
mole; severe pain; swelling, fever or signs of infection; an allergic reaction or trouble
breathing; an emergency). Recall matters more than precision here: a false alarm costs a call,
a miss could cost far more. Negated mentions ("no fever", "the bleeding stopped") are not red
flags, but a person still reads them (they are clinical concerns).
"""

from __future__ import annotations

import re
from enum import StrEnum

from services.messenger.domain.reply_words import rx


class RedFlag(StrEnum):
    bleeding = "bleeding"
    changing_mole = "changing_mole"
    severe_pain = "severe_pain"
    swelling_or_fever = "swelling_or_fever"
    allergic_reaction = "allergic_reaction"
    emergency = "emergency"


# fmt: off
BLEEDING = rx(
    r"\bbl+e+e?d+(?:ing|s|ed|in)?\b", r"\bbled\b", r"\bblood(?:y)?\b", r"\bsangr\w*",
    r"\bhemorr?ag\w*", r"stitches (?:popped|opened|came)", r"wound (?:opened|is open)",
    r"herida se abrio",
)
# fmt: on
_MOLE_STRONG = re.compile(r"\b(?:moles?|lunar(?:es)?)\b")
_MOLE_WEAK = re.compile(r"\b(?:spots?|freckles?|manchas?|bump|bulto)\b")
_MOLE_CHANGE_STRONG = re.compile(
    r"chang|bigger|grow|grew|darker|colou?r|shape|uneven|irregular|\bnew\b|itch|bleed|"
    r"different|weird|black|purple|raised|crust|turn(?:ed|ing)|went from|cambi|crec|grande|oscur|"
    r"nuev[oa]|forma|rar[oa]|sangr|comez|\bpica|negr[oa]|se puso|distint[oa]"
)
_MOLE_CHANGE_WEAK = re.compile(
    r"chang|bigger|grow|grew|darker|black|shape|uneven|irregular|\bnew\b|went from|turn(?:ed|ing) "
    r"(?:dark|black)|cambi|crec|oscur|nuev[oa]|negr[oa]|se puso"
)
# fmt: off
SEVERE_PAIN = rx(
    r"(?:severe|terrible|unbearable|excruciating|really bad|so bad|horrible|extreme|intense|"
    r"worst|awful|a lot of|so much|sharp)\s+(?:\w+\s+){0,2}?(?:pain|hurt)",
    r"\bpain\s+(?:is|was|has been|getting)?\s*(?:so bad|unbearable|severe|excruciating|terrible|"
    r"horrible|worse|10/10)", r"\bhurts?\s+(?:so|really|very)\s+(?:much|bad)", r"\b10/10\b",
    r"dolor\s+(?:muy\s+)?(?:fuerte|intenso|severo|insoportable|terrible|horrible)",
    r"me duele\s+(?:mucho|muchisimo|demasiado|horrible)",
    r"\bhurt\w*\s+(?:so|really|very|like)\s+(?:much|bad|crazy|hell)",
    r"\b(?:hurting|hurts|pain\w*)\s+like\s+(?:crazy|hell|mad)", r"killing me",
    r"can'?t (?:take|stand|bear) (?:it|the pain)", r"\bagony\b", r"\bthrobbing\b",
    r"pain (?:meds|medicine|pills) (?:are not|aren'?t|don'?t|not) (?:working|helping)",
    r"no aguanto (?:el |la )?dolor", r"dolor (?:terrible|horrible|muy fuerte)",
    r"duele (?:horrible|demasiado|muchisimo)",
    r"(?:pain|hurt\w*|sore\w*)\b.{0,30}\b(?:worse|can'?t sleep|cant sleep|unbearable)",
    r"(?:worse|empeor\w*)\b.{0,20}\b(?:pain|dolor)", r"no (?:lo |la )?(?:soporto|aguanto)",
    r"mucho dolor", r"dolor\b.{0,20}\b(?:peor|no puedo dormir)",
)
# fmt: on
# fmt: off
SWELLING_FEVER = rx(
    r"\bswe+l+\w*", r"\bswollen\b", r"\bswelled\b", r"\bfe+v+e?r\w*", r"\bchills\b",
    r"\btemp(?:erature)?\s+(?:is\s+|of\s+)?1\d\d\b", r"\bfeel(?:ing)?\s+(?:hot|feverish)\b",
    r"\bred (?:and )?hot\b", r"\bpus\b", r"\booz\w*", r"\bhinch\w*", r"inflamad\w*",
    r"\bfiebre\b", r"calentura", r"escalofrio\w*", r"\bpuff\w*", r"ballooned", r"blown up",
    r"blew up", r"\btemp(?:erature)?\b", r"temperatura", r"febril", r"\binfect\w*", r"infeccion",
    r"infectad\w*", r"hinchad\w*",
)
# fmt: on
# fmt: off
ALLERGY = rx(
    r"allerg\w*", r"alergi\w*", r"\bhives\b", r"\bronchas\b", r"urticaria", r"anaphyla\w*",
    r"throat\s+(?:feels\s+|is\s+)?(?:tight|closing|swell\w*)",
    r"can'?t breath\w*|cant breath\w*|trouble breathing|hard to breathe|short of breath",
    r"no puedo respirar|me cuesta respirar|dificultad para respirar",
    r"\brash\w*\s+(?:\w+\s+){0,2}?(?:spread\w*|all over)", r"sarpullido", r"reaccion alergica",
    r"\bwelts\b",
    r"(?:tongue|lips?|face|eyes?|throat)\s+(?:\w+\s+){0,2}?(?:thick|swell\w*|swollen|puff\w*)",
    r"(?:garganta|lengua|labios?)\s+(?:\w+\s+){0,1}?(?:cerrad\w*|cerrando|hinchad\w*|gruesa)",
    r"itchy all over|itching all over|pica todo", r"epi-?pen", r"me dio alergia",
    r"(?:covered|all over)\b.{0,20}\b(?:bumps|hives|welts|spots|rash)",
    r"(?:bumps|hives|welts|rash)\b.{0,20}\ball over", r"face (?:feels|is|got) (?:tight|tingly)",
    r"garganta\b.{0,15}\b(?:cierra|cerr\w*|hinch\w*|aprieta)",
    r"(?:cierra|cerr\w*|hinch\w*|aprieta)\b.{0,15}\bgarganta", r"throat\b.{0,15}\bclos\w*",
)
# fmt: on
EMERGENCY = rx(r"\bemergenc\w*", r"\bemergencia\b", r"\b911\b")

# fmt: off
_NEGATED = rx(
    r"\b(?:no|not|without|sin|no longer|never)\s+(?:\w+\s+){0,1}?"
    r"(?:bleed\w*|sangr\w*|fever\w*|fiebre|swell\w*|swollen|hinch\w*|pain|dolor|pus)",
    r"\b(?:bleeding|sangrado|fever|fiebre|swelling|hinchazon|pain|dolor)\s+(?:has\s+)?"
    r"(?:stopped|went away|is gone|gone|se quito|paro|se detuvo)",
)
# fmt: on
_NOT_A_NEGATION = re.compile(r"(?:wo?n'?t|can'?t|not|no)\s+stop|no para|no se detiene")


def red_flags(folded: str) -> tuple[RedFlag, ...]:
    found: list[RedFlag] = []
    negated = bool(_NEGATED.search(folded)) and not _NOT_A_NEGATION.search(folded)
    text = _NEGATED.sub(" ", folded) if negated else folded
    if BLEEDING.search(text):
        found.append(RedFlag.bleeding)
    if _MOLE_STRONG.search(text) and _MOLE_CHANGE_STRONG.search(text):
        found.append(RedFlag.changing_mole)
    elif m := _MOLE_WEAK.search(text):
        window = text[max(0, m.start() - 60) : m.end() + 60]
        if _MOLE_CHANGE_WEAK.search(window):
            found.append(RedFlag.changing_mole)
    if SEVERE_PAIN.search(text):
        found.append(RedFlag.severe_pain)
    if SWELLING_FEVER.search(text):
        found.append(RedFlag.swelling_or_fever)
    if ALLERGY.search(text):
        found.append(RedFlag.allergic_reaction)
    if EMERGENCY.search(text):
        found.append(RedFlag.emergency)
    return tuple(found)


def negated_symptom(folded: str) -> bool:
    return bool(_NEGATED.search(folded)) and not _NOT_A_NEGATION.search(folded)
