"""The words simulated patients text back, by what they mean, language and kind of care.

Most come from the messenger's labelled reply corpus (services/messenger/replies/corpus.jsonl),
a few are our own; a test runs the messenger's real classifier over every phrase here and
checks it understands what the patient means. Slot choices always carry the digit.
"""

from __future__ import annotations

from enum import StrEnum


class Meaning(StrEnum):
    """What a patient means by a reply (named as the messenger's corpus labels them)."""

    book = "book"
    choose_slot = "choose_slot"
    later = "later"
    clinical_concern = "clinical_concern"
    red_flag = "red_flag"
    opt_out = "opt_out"
    decline = "decline"
    no_longer_needed = "no_longer_needed"
    question = "question"  # a practical question: here always cost or insurance


COSMETIC = "cosmetic"  # flavour: the care is elective (neurotoxin, filler, laser, peels)
COST = "cost"  # flavour: money is the reason

# (meaning, language, flavour) -> phrases; flavour "" is the general case.
PHRASES: dict[tuple[Meaning, str, str], tuple[str, ...]] = {
    (Meaning.book, "en", ""): (
        "Yes please book me", "book", "BOOK", "Book please", "I'd like to schedule",
        "ok book it", "schedule me pls", "Yes, I'd like to come back in", "sure, lets set it up",
        "booking sounds good", "I'd love to get that scheduled, thanks for the reminder",
        "please get me on the schedule", "what times do you have?", "yeah go ahead and book it",
    ),
    (Meaning.book, "es", ""): (
        "Sí, quiero una cita", "CITA", "cita", "quiero agendar", "quiero hacer una cita por favor",
        "me gustaría reservar", "ok, cita por favor 🙏", "sí, me interesa una cita",
        "¿Qué horarios tienen?", "Sí, por favor, quiero una cita",
    ),
    (Meaning.choose_slot, "en", ""): (
        "{n}", "{n} please", "{n} works for me thanks", "Let's do {n}", "#{n}",
        "I'll do number {n}", "Option {n}", "number {n} works",
    ),
    (Meaning.choose_slot, "es", ""): (
        "{n}", "{n} por favor", "opción {n} por favor", "me queda bien la {n}", "la {n}",
        "opción {n}",
    ),
    (Meaning.later, "en", ""): (
        "Can you text me in 2 weeks?", "Can you remind me in a couple weeks?",
        "remind me next month", "not right now, maybe next month",
        "now's not a good time, try me in 2 weeks", "Busy with work, text me again in 3 weeks",
        "Not this week. Next week maybe", "maybe in a few weeks", "too busy rn ⏳",
    ),
    (Meaning.later, "es", ""): (
        "recuérdeme en dos semanas", "dentro de 3 semanas por favor",
        "ahorita no, el próximo mes", "la otra semana mejor", "ahora no puedo por el trabajo",
        "estoy de viaje, después le llamo",
    ),
    (Meaning.question, "en", ""): (
        "How much will this cost? my insurance changed", "How much will this cost?",
        "will my insurance pay for this?", "how much would it be without insurance?",
        "is this covered by medicare?", "do you take aetna?", "what's the copay for this visit?",
    ),
    (Meaning.question, "es", ""): (
        "¿Cuánto cuesta?", "¿Aceptan Medicaid?", "¿Cuánto cuesta la consulta? cambió mi seguro",
    ),
    (Meaning.decline, "en", ""): (
        "no thanks", "not interested", "no thank you, I'm fine", "not at this time, thank you",
        "I'll pass", "not for me thanks", "nope",
    ),
    (Meaning.decline, "es", ""): ("no gracias", "no me interesa", "no, gracias por avisar"),
    (Meaning.decline, "en", COST): (
        "too pricey for me", "no, too expensive", "I can't afford another visit",
        "cant pay for it, sorry",
    ),
    (Meaning.decline, "es", COST): ("muy caro, no gracias", "no puedo pagar otra consulta"),
    (Meaning.no_longer_needed, "en", ""): (
        "I saw another dermatologist", "I switched practices", "I see a derm closer to home now",
        "It cleared up, don't need it anymore", "I go to a different office now",
        "already taken care of by another office", "we moved out of state",
    ),
    (Meaning.no_longer_needed, "es", ""): (
        "ahora voy con otro dermatólogo", "ya me atendieron en otra clínica", "ya no lo necesito",
        "me mudé a otro estado",
    ),
    (Meaning.no_longer_needed, "en", COSMETIC): (
        "I had the botox done somewhere else", "I switched practices",
        "don't need it anymore, thanks",
    ),
    (Meaning.opt_out, "en", ""): (
        "STOP", "Stop", "stop", "UNSUBSCRIBE", "please stop texting me",
        "Stop sending me these messages", "take me off your list",
    ),
    (Meaning.opt_out, "es", ""): (
        "PARAR", "BAJA", "STOP", "no me manden más mensajes", "dejen de escribirme",
    ),
    (Meaning.clinical_concern, "en", ""): (
        "Is it normal that the treated area is itchy?", "I'm worried about a spot on my nose",
        "Should I keep using the cream twice a day?", "Is it normal that the scar is still pink?",
        "there's a small scab that won't heal", "the rash came back, is that expected?",
        "Are my biopsy results back?",
    ),
    (Meaning.clinical_concern, "es", ""): (
        "¿es normal que me pique?", "¿sigo usando la crema?",
        "¿Es normal que la cicatriz esté roja?", "¿ya están mis resultados?",
        "¿puedo bañarme con los puntos?",
    ),
    (Meaning.clinical_concern, "en", COSMETIC): (
        "is it safe to get botox while breastfeeding?", "can i use makeup on the treated area?",
        "what sunscreen should I use after laser?", "mild redness after the peel, normal?",
    ),
    (Meaning.red_flag, "en", ""): (
        "the mole is bleeding and growing fast",
        "The mole on my back has gotten bigger and darker since my last visit",
        "I have a new mole on my arm that looks different from the others",
        "my biopsy site is bleeding and wont stop",
    ),
    (Meaning.red_flag, "es", ""): (
        "el lunar está sangrando y creció mucho", "me salió un lunar nuevo en la cara y se ve raro",
        "El lunar de mi espalda cambió de color y está más grande",
    ),
    (Meaning.red_flag, "en", COSMETIC): (
        "My lip is super swollen after the filler yesterday",
        "swelling around my eye after the laser is getting worse",
    ),
    (Meaning.red_flag, "es", COSMETIC): ("se me hinchó la cara después del láser",),
}  # fmt: skip


def phrases(meaning: Meaning, language: str, flavour: str = "") -> tuple[str, ...]:
    """The phrases for a meaning, falling back to the general ones, then to English."""
    lang = language if language in ("en", "es") else "en"
    for key in ((meaning, lang, flavour), (meaning, lang, ""), (meaning, "en", "")):
        if key in PHRASES:
            return PHRASES[key]
    raise KeyError(meaning)


def words_for(
    meaning: Meaning, language: str, flavour: str, u: float, *, slot: int | None = None
) -> str:
    """One phrase, chosen by ``u`` in [0, 1); a slot choice names ``slot``."""
    pool = phrases(meaning, language, flavour)
    text = pool[min(int(u * len(pool)), len(pool) - 1)]
    return text.replace("{n}", str(slot)) if slot is not None else text
