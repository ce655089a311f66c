"""How the practice's patients answer Revisit's texts: by persona, and by the care in question.

A patient sees only the words on their phone, so what a message is (outreach, a slot offer, a
confirmation) is read from its body, using phrases of the messenger's own reviewed replies.
Patients answer outreach and slot offers, never confirmations or acknowledgements; a patient
who said STOP never writes again. Clinical care (follow-ups, surveillance, questions) gets
more answers than cosmetic upkeep.

Every choice is a draw from a hash of (seed, patient, message, purpose), never the global
random: a patient answers the same message the same way whatever else happened before it.
Their words come from the messenger's labelled reply corpus (plus a few of our own); a test
runs the messenger's classifier over every one.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from simulator.model import Journey, Patient, Persona
from simulator.phrases import COSMETIC, COST, Meaning, words_for

__all__ = [
    "ConversationState",
    "Conversations",
    "Heard",
    "Inbound",
    "Meaning",
    "Reply",
    "answer",
    "heard",
    "offer_choices",
    "reply_share",
]


class Heard(StrEnum):
    """What a message from the practice is, as the patient reading it understands it."""

    outreach = "outreach"  # a reminder about care: it can be answered
    slot_offer = "slot_offer"  # "1) ... 2) ... 3) ... Reply 1, 2 or 3"
    opt_out_confirmation = "opt_out_confirmation"
    booking_confirmation = "booking_confirmation"
    acknowledgement = "acknowledgement"  # the practice answering what the patient wrote


# A freed slot offered alone: "an earlier time opened ... Reply 1 to take it".
_ONE_TIME = (
    "reply 1 to take it", "responda 1 para tomarlo",
    "to take it, reply 1", "para tomarlo, responda 1",
)  # fmt: skip

# Phrases of the messenger's conversation replies (services/messenger/domain/system_messages),
# on folded text; a test renders every one and checks it is recognised, never taken for outreach.
_MARKERS: tuple[tuple[Heard, tuple[str, ...]], ...] = (
    (
        Heard.opt_out_confirmation,
        ("unsubscribed", "dado de baja", "you will not receive", "no recibira mas mensajes"),
    ),
    (Heard.slot_offer, ("reply 1, 2 or 3", "responda 1, 2 o 3", *_ONE_TIME)),
    (
        Heard.booking_confirmation,
        ("we have requested", "will confirm it with you", "pedimos", "se lo confirmara",
         "confirmed", "confirmad"),
    ),
    (
        Heard.acknowledgement,
        (
            "subscribed again", "suscrito de nuevo", "appointment reminders and care follow-ups",
            "recordatorios de citas y seguimiento", "alerted the care team", "alertamos al equipo",
            "do not give medical advice", "no damos consejos medicos", "thanks for your question",
            "gracias por su pregunta", "thank you for telling us", "gracias por contarnos",
            "could not find an open time", "no encontramos un horario",
            "that time was just taken", "se acaba de ocupar", "we will check back after",
            "le escribiremos de nuevo despues", "if you change your mind", "si cambia de opinion",
            "updated our records", "actualizamos nuestros registros", "removed this number",
            "quitamos este numero", "looking for open times", "estamos buscando horarios",
            "has already been taken", "ya se ocupo",
        ),
    ),
)  # fmt: skip
_CHOICE = re.compile(r"(?<![\d:])([1-9])\)\s")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def heard(body: str) -> Heard:
    folded = _fold(body)
    for kind, phrases in _MARKERS:
        if any(phrase in folded for phrase in phrases):
            return kind
    return Heard.outreach


def offer_choices(body: str) -> int:
    """How many times a slot offer lists ("1) Tue Mar 3, 9:00 AM; 2) ..."); one for a freed
    slot offered alone."""
    listed = len(set(_CHOICE.findall(body)))
    if not listed and any(phrase in _fold(body) for phrase in _ONE_TIME):
        return 1
    return listed


@dataclass(frozen=True)
class Inbound:
    """A message the patient received."""

    message_id: str
    body: str
    received_at: datetime
    is_slot_offer: bool = False
    offer_choices: int = 0


@dataclass(frozen=True)
class Reply:
    body: str
    after_minutes: int
    meaning: Meaning  # what the patient means (the simulation's truth, for the report)


@dataclass(frozen=True)
class ConversationState:
    """What this patient has done so far in this conversation."""

    outreach_seen: int = 0
    offers_seen: int = 0
    replies: int = 0
    asked_later: int = 0
    asked_cost: bool = False
    asked_clinical: bool = False
    chose_slot: bool = False
    declined: bool = False
    stopped: bool = False

    def after(self, inbound: Inbound, reply: Reply | None) -> ConversationState:
        """The state once the patient has read ``inbound`` and sent ``reply`` (or not)."""
        kind = Heard.slot_offer if inbound.is_slot_offer else heard(inbound.body)
        state = self
        if kind is Heard.outreach:
            state = replace(state, outreach_seen=state.outreach_seen + 1)
        elif kind is Heard.slot_offer:
            state = replace(state, offers_seen=state.offers_seen + 1)
        if reply is None:
            return state
        meaning = reply.meaning
        return replace(
            state,
            replies=state.replies + 1,
            asked_later=state.asked_later + (meaning is Meaning.later),
            asked_cost=state.asked_cost or meaning is Meaning.question,
            asked_clinical=state.asked_clinical
            or meaning in (Meaning.clinical_concern, Meaning.red_flag),
            chose_slot=state.chose_slot or meaning is Meaning.choose_slot,
            declined=state.declined or meaning is Meaning.decline,
            stopped=state.stopped or meaning is Meaning.opt_out,
        )


class Conversations:
    """Every patient's conversation so far: answers and remembers what each one has said."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.states: dict[str, ConversationState] = {}

    def answer(self, patient: Patient, journey: Journey, inbound: Inbound) -> Reply | None:
        state = self.states.get(patient.patient_id, ConversationState())
        reply = answer(patient, journey, inbound, state, seed=self.seed)
        self.states[patient.patient_id] = state.after(inbound, reply)
        return reply


# --- how often, how soon ----------------------------------------------------------------------

# Chance of answering one outreach message, before the care in question is weighed.
_ANSWERS = {
    Persona.prompt: 0.85,
    Persona.busy: 0.70,
    Persona.price_sensitive: 0.65,
    Persona.anxious: 0.80,
    Persona.done: 0.60,
    Persona.silent: 0.0,
}
# Clinical care gets answered more than cosmetic upkeep or an old relationship.
_JOURNEY_WEIGHT = {
    Journey.surveillance: 1.15,
    Journey.follow_up: 1.2,
    Journey.question: 1.2,
    Journey.chronic: 1.1,
    Journey.canceller: 1.0,
    Journey.series: 0.9,
    Journey.regular: 0.9,
    Journey.consult: 0.8,
    Journey.lapsed: 0.75,
    Journey.cosmetic: 0.6,
}
# Minutes between reading and answering (log-uniform between the two).
_DELAY = {
    Persona.prompt: (5, 90),
    Persona.busy: (120, 2880),
    Persona.price_sensitive: (30, 1440),
    Persona.anxious: (5, 240),
    Persona.done: (30, 2880),
    Persona.silent: (5, 5),
}
_OFFER_DELAY = (5, 300)  # an offer holds for 48 h: people pick within hours
_ALARM_DELAY = (5, 45)  # a bleeding mole does not wait
STOP_SHARE = 0.015  # of answering patients other than "done", whose first answer is STOP
RED_FLAG_SHARE = 0.03  # of an anxious patient's answers to outreach
# Someone watching a lesion (a question, a biopsy follow-up, surveillance) is who writes "it is
# bleeding and growing": the practice must see that now and then.
WATCHING_RED_FLAG_SHARE = 0.2
WATCHING = frozenset({Journey.question, Journey.follow_up, Journey.surveillance})
SLOT_PICK = (0.55, 0.3, 0.15)  # earliest first: most take the first time offered


def reply_share(persona: Persona, journey: Journey) -> float:
    """The chance of answering one outreach message."""
    return min(0.97, _ANSWERS[persona] * _JOURNEY_WEIGHT[journey])


Roll = Callable[[str], float]  # a draw for one message, by purpose


def draw(seed: int, *parts: str) -> float:
    """A number in [0, 1) fixed by the seed and ``parts``."""
    key = "\x1f".join((str(seed), *parts)).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2.0**64


def _minutes(span: tuple[int, int], u: float) -> int:
    low, high = span
    return round(math.exp(math.log(low) + u * (math.log(high) - math.log(low))))


# --- what they say ----------------------------------------------------------------------------


def answer(
    patient: Patient, journey: Journey, inbound: Inbound, state: ConversationState, *, seed: int
) -> Reply | None:
    """The patient's reply to ``inbound``, or None when they leave it unanswered."""
    if state.stopped or patient.persona is Persona.silent:
        return None
    # Keyed by where the message falls in the conversation, not by its id: the messenger's ids
    # for its answers differ between runs, and one seed must give the same patient.
    pid, mid = patient.patient_id, f"o{state.outreach_seen}-s{state.offers_seen}"

    def roll(purpose: str) -> float:
        return draw(seed, pid, mid, purpose)

    kind = Heard.slot_offer if inbound.is_slot_offer else heard(inbound.body)
    if kind is Heard.slot_offer:
        return _pick_slot(patient, inbound, roll)
    if kind is not Heard.outreach or roll("answers") >= reply_share(patient.persona, journey):
        return None
    meaning, flavour = _meaning(patient, journey, state, roll, seed)
    if journey is Journey.cosmetic and not flavour:
        flavour = COSMETIC
    body = words_for(meaning, patient.language, flavour, roll("words"))
    span = _ALARM_DELAY if meaning is Meaning.red_flag else _DELAY[patient.persona]
    return Reply(body, _minutes(span, roll("delay")), meaning)


def _pick_slot(patient: Patient, inbound: Inbound, roll: Roll) -> Reply | None:
    # The listed times are the truth: an offer may hold fewer than three.
    choices = offer_choices(inbound.body) or inbound.offer_choices
    if choices <= 0 or roll("answers") >= 0.93:  # some let an offer lapse
        return None
    u, pick = roll("slot"), choices
    weights = SLOT_PICK[:choices]
    for n, weight in enumerate(weights, start=1):
        u -= weight / sum(weights)
        if u < 0:
            pick = n
            break
    body = words_for(Meaning.choose_slot, patient.language, "", roll("words"), slot=pick)
    return Reply(body, _minutes(_OFFER_DELAY, roll("delay")), Meaning.choose_slot)


def _meaning(
    patient: Patient, journey: Journey, state: ConversationState, roll: Roll, seed: int
) -> tuple[Meaning, str]:
    """What the patient means to say to this outreach, and the flavour of their words."""
    persona, pid = patient.persona, patient.patient_id
    if persona is Persona.done:
        if state.replies:  # written to again after saying why: enough
            return Meaning.opt_out, ""
        reason = draw(seed, pid, "done-reason")  # one reason per patient, not per message
        if reason < 0.35:
            return Meaning.opt_out, ""
        return (Meaning.no_longer_needed if reason < 0.7 else Meaning.decline), ""
    if state.replies == 0 and draw(seed, pid, "says-stop") < STOP_SHARE:
        return Meaning.opt_out, ""
    if persona is Persona.busy:
        return (Meaning.later if state.asked_later == 0 else Meaning.book), ""
    if persona is Persona.price_sensitive:
        if not state.asked_cost:
            return (Meaning.question if roll("cost") < 0.75 else Meaning.book), COST
        return (Meaning.book, "") if roll("after-cost") < 0.55 else (Meaning.decline, COST)
    if persona is Persona.anxious:
        share = WATCHING_RED_FLAG_SHARE if journey in WATCHING else RED_FLAG_SHARE
        if roll("red-flag") < share:
            return Meaning.red_flag, ""
        return (Meaning.book if state.asked_clinical else Meaning.clinical_concern), ""
    return Meaning.book, ""
