"""Reply understanding: the layers, in their safety order, each reading the same reply.

1. Consent (rules, ``consent``): carrier keywords and any reasonable way of saying "stop
   messaging me", anywhere in the reply; START/UNSTOP/YES to opt back in; HELP. The model's
   consent head is a backstop: a revocation it is confident of counts even if no rule saw it.
2. Clinical safety (rules OR model, ``red_flags``): a red flag when the lexicon sees one or the
   model's red-flag probability reaches its low, dev-tuned threshold; clinical content likewise.
3. Intent and barrier (the model, with rules where rules are right: the carrier-style words
   BOOK/CITA/LATER, the number of an offered slot, the date asked for).

``merge`` keeps every consent and safety signal of every layer, so no layer can undo another's
red flag or revocation. Below the intent threshold the automatic path does not act on the
intent: a person reads the reply, with this reading as the suggestion.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from functools import cache
from pathlib import Path

from services.messenger.domain.consent import read_consent
from services.messenger.domain.dates import snooze_date
from services.messenger.domain.red_flags import RedFlag, Safety, clauses, read_safety
from services.messenger.domain.reply_model import ReplyModel
from services.messenger.domain.reply_words import normalise
from services.messenger.domain.slots import chosen_slot
from services.messenger.domain.understanding import Reading, Understanding, merge
from shared.events.messages import Barrier, ReplyIntent

__all__ = ["RedFlag", "Understanding", "chosen_slot", "classify", "default_model", "normalise"]

MODEL_FILE = Path(__file__).parents[1] / "replies" / "reply_model.npz"
DEFAULTS = {
    "red_flag": 0.2,
    "clinical": 0.35,
    "revoke": 0.6,
    "intent": 0.6,
    "barrier": 0.5,
    "slot": 0.2,
}

# The words the practice's messages ask for ("Reply BOOK", "Responda CITA", "reply LATER and
# the month"), as a clause of their own; and a bare yes.
_BOOK_WORD = re.compile(
    r"^\W*(?:yes |si |ok |okay )?(?:book|booking|cita|agendar|schedule|reservar)\W*(?:please|pls|"
    r"por favor|porfa|me|now|it|me in)?\W*$|"
    # A clause that is only a request to book ("I'd like to schedule", "quiero una cita"), also
    # beside other clauses: a booking with a red flag offers times as well as paging.
    r"^\W*(?:yes |si |ok |okay |sure )?(?:i'?d (?:like|love) to|i would (?:like|love) to|i want to|"
    r"i wanna|please|pls|can you|could you|quiero|me gustaria|necesito) (?:(?:book|schedule|"
    r"agendar|reservar)(?: me)?(?: in)?(?: an? (?:appointment|appt|visit)| una cita| cita)?|"
    r"(?:make|get) an? (?:appointment|appt|visit)|get (?:that|it|this|me|one) (?:scheduled|booked)"
    r"|(?:hacer|sacar)(?: una)? cita|una cita)"
    r"(?: please| pls| por favor| porfa| soon| pronto)?\W*$"
)
_SEE_TIMES = re.compile(
    r"\bwhat (?:times|days|slots|dates|openings) (?:do you|do u|does|are|you got|y'?all|is|are)\b|"
    r"\bque (?:horarios|dias|fechas) (?:tienen|hay)\b|\b(?:send|text) me (?:the |some )?(?:times|"
    r"options)\b|\bany (?:openings|availability)\b|\b(?:mandeme|mandenme) (?:los )?horarios\b"
)
_YES = re.compile(r"^\W*(?:yes+|yeah|yep|yup|yes please|sure|si|si por favor|claro|dale)\W*$")
_LATER_WORD = re.compile(r"^\W*(?:later|mas tarde|luego|despues)\b")
# A clause that only asks to be reached again after a while ("can you text me in 2 weeks?",
# "dentro de 3 semanas"): the date is read by ``snooze_date``.
_LATER_ASK = re.compile(
    r"^\W*(?:(?:can|could) (?:you|u) |please |pls )?(?:text|remind|message|contact|write|email) "
    r"(?:me|us) (?:again |back )?(?:in|after) (?:a |an |\d+ |a couple(?: of)? |a few |two |three )?"
    r"(?:days?|weeks?|wks?|months?)(?: please| pls)?\W*$|"
    r"^\W*(?:dentro de|en|escribanme en|recuerdenme en) (?:\d+|un|una|dos|tres|unas|unos) "
    r"(?:dias|semanas|meses)(?: por favor| porfa)?\W*$"
)


@cache
def default_model() -> ReplyModel | None:
    """The shipped model (None before the first ``make train-replies``)."""
    return ReplyModel.load(MODEL_FILE) if MODEL_FILE.exists() else None


def _model_readings(
    probabilities: dict[str, dict[str, float]],
    thresholds: dict[str, float],
    offered_slots: int,
    other_sense: bool,
) -> tuple[Reading, Reading]:
    """(the model's consent and safety reading, its intent and barrier reading). Where the
    rules read a revoking word in another sense ("it won't stop bleeding"), they decide: the
    model adds revocations only where no such word was read."""
    t = thresholds
    safety_p = probabilities["safety"]
    level = Safety.none
    if safety_p["red_flag"] >= t["red_flag"]:
        level = Safety.red_flag
    elif safety_p["red_flag"] + safety_p["clinical"] >= t["clinical"]:
        level = Safety.clinical
    watch = Reading(
        source="model",
        revoke=not other_sense and probabilities["consent"]["revoke"] >= t["revoke"],
        safety=level,
        red_flags=frozenset({RedFlag.other}) if level is Safety.red_flag else frozenset(),
    )
    intents = dict(probabilities["intent"])
    if offered_slots == 0:
        intents.pop("choose_slot", None)
    name = max(intents, key=lambda k: intents[k])
    barrier_p = probabilities["barrier"]
    barrier = max(barrier_p, key=lambda k: barrier_p[k])
    intent = Reading(
        source="model",
        intent=ReplyIntent.unknown if name == "none" else ReplyIntent(name),
        intent_confidence=intents[name] / sum(intents.values()),
        barrier=Barrier(barrier)
        if barrier != "none" and barrier_p[barrier] >= t["barrier"]
        else None,
    )
    return watch, intent


def _rule_intent(
    folded: str,
    offered_slots: int,
    opted_out: bool,
    probabilities: dict[str, dict[str, float]] | None,
    slot_t: float,
) -> Reading | None:
    parts = clauses(folded)
    if (
        any(_BOOK_WORD.search(c) for c in parts)
        or (not opted_out and not offered_slots and parts and _YES.search(parts[0]))
        or (not offered_slots and _SEE_TIMES.search(folded))
    ):
        return Reading("keyword", intent=ReplyIntent.book, intent_confidence=1.0)
    if (_LATER_WORD.search(folded) and len(folded.split()) <= 4) or any(
        _LATER_ASK.search(c) for c in parts
    ):
        return Reading("keyword", intent=ReplyIntent.later, intent_confidence=1.0)
    slot = chosen_slot(folded, offered_slots)
    if slot is None:
        return None
    p_choose = probabilities["intent"]["choose_slot"] if probabilities else 1.0
    if p_choose >= slot_t:
        return Reading("slot", intent=ReplyIntent.choose_slot, intent_confidence=1.0, slot=slot)
    return None


def classify(
    text: str,
    *,
    offered_slots: int = 0,
    opted_out: bool = False,
    today: date | None = None,
    step: int | None = None,
    model: ReplyModel | None = None,
    extra: Sequence[Reading] = (),
) -> Understanding:
    """What a reply means. ``offered_slots``: how many slots the last offer listed (0: none);
    ``extra``: readings from elsewhere (an optional model-backed reader), merged add-only."""
    model = model or default_model()
    folded = normalise(text)
    consent = read_consent(text, opted_out=opted_out)
    safety = read_safety(folded)
    readings = [
        Reading(
            "rules",
            revoke=consent.revoke,
            every_channel=consent.every_channel,
            channels=consent.channels,
            opt_in=consent.opt_in,
            help=consent.help,
            keyword=consent.keyword,
            safety=safety.level,
            red_flags=safety.flags,
        )
    ]
    probabilities: dict[str, dict[str, float]] = {}
    thresholds = dict(DEFAULTS)
    if model is not None:
        probabilities = model.predict(
            text, offered_slots=offered_slots, opted_out=opted_out, step=step
        )
        thresholds.update(model.thresholds)
        readings += _model_readings(probabilities, thresholds, offered_slots, consent.other_sense)
    rule = _rule_intent(folded, offered_slots, opted_out, probabilities or None, thresholds["slot"])
    if rule is not None:
        readings.append(rule)
    readings += extra
    merged = merge(readings)
    sure = merged.intent_confidence >= thresholds["intent"]
    until = None
    if merged.intent is ReplyIntent.later and today is not None:
        until = snooze_date(folded, today)
    return Understanding(
        merged,
        sure=sure,
        snooze_until=until,
        readings=tuple(readings),
        probabilities=probabilities,
    )
