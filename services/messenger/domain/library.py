"""The default template library: every workflow step, SMS and e-mail, English and Spanish.

Each workflow's four steps follow the practice playbook:

1. the documented reason (``{reason}``: the true source and due date, see ``reasons.py``), the
   next step and an easy reply;
2. booking options (the booking link when the practice has one, open times by text) or a later
   reminder ("reply LATER and the month");
3. one short barrier question with five choices: timing, cost, unsure it is needed, a question
   or concern, no longer needed;
4. a respectful close: no more messages will follow about this, and how to pause or decline.

The words are composed from a voice per tone (clinical: plain and factual; supportive: warm;
friendly: light) and what each workflow is about (``WORKFLOWS``). They name the visit the way a
patient would (``{service_name}``), never a condition, carry no urgency beyond routine and no
offer (a practice writes its own marketing words, an offer in a sentence of its own); every one
passes the linter (a test checks all of them). Seeded into the database at start-up as approved
versions; a practice can add its own through the ops API.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.messenger.domain.templates import Template
from shared.events.common import Channel, Purpose
from shared.events.outreach import Tone

Words = dict[str, str]  # language -> words


@dataclass(frozen=True)
class WorkflowWords:
    tone: Tone
    purpose: Purpose
    about: Words  # what steps 2-4 are about, as a noun phrase ("your {service_name}")
    # Step 2's booking phrase when it differs from ``about`` (cancellation: with whom).
    booking: Words | None = None


_YOUR = {"en": "your {service_name}", "es": "su {service_name}"}

WORKFLOWS: dict[str, WorkflowWords] = {
    # The skin-cancer lines' Spanish names are all feminine ("revisión", "cita").
    "skin_cancer_surveillance": WorkflowWords(
        Tone.clinical,
        Purpose.care,
        {"en": "your regular {service_name}", "es": "su {service_name} periódica"},
    ),
    "chronic_review": WorkflowWords(
        Tone.clinical,
        Purpose.care,
        {"en": "your next {service_name}", "es": "su siguiente {service_name}"},
    ),
    "follow_up": WorkflowWords(Tone.supportive, Purpose.care, _YOUR),
    "treatment_series": WorkflowWords(
        Tone.supportive,
        Purpose.care,
        {"en": "your next {service_name}", "es": "su siguiente {service_name}"},
    ),
    "acne_follow_up": WorkflowWords(
        Tone.supportive,
        Purpose.care,
        {"en": "your {service_name} check-in", "es": "su control ({service_name})"},
    ),
    "cosmetic_maintenance": WorkflowWords(
        Tone.friendly,
        Purpose.marketing,
        {"en": "your next {service_name}", "es": "su siguiente {service_name}"},
    ),
    "consult_not_started": WorkflowWords(
        Tone.supportive,
        Purpose.care,
        {"en": "your first {service_name}", "es": "el inicio de su {service_name}"},
    ),
    "cancellation_recovery": WorkflowWords(
        Tone.supportive,
        Purpose.care,
        {"en": "a new time for your {service_name}", "es": "una nueva hora para su cita"},
        booking={
            "en": "a new time[[ with {provider_name}]] for your visit",
            "es": "otra hora[[ con {provider_name}]] para su cita",
        },
    ),
    "lapsed_patient": WorkflowWords(
        Tone.supportive,
        Purpose.care,
        {"en": "a visit with us", "es": "una visita con nosotros"},
    ),
    "service_recovery": WorkflowWords(Tone.supportive, Purpose.care, _YOUR),
}

# --- the voice of each tone: greeting and the words around the facts --------------------------

GREETING: dict[tuple[Tone, str], str] = {
    (Tone.clinical, "en"): "Hello[[ {first_name}]]",
    (Tone.supportive, "en"): "Hi[[ {first_name}]]",
    (Tone.friendly, "en"): "Hi[[ {first_name}]]!",
    (Tone.clinical, "es"): "Hola[[ {first_name}]]",
    (Tone.supportive, "es"): "Hola[[ {first_name}]]",
    (Tone.friendly, "es"): "¡Hola[[ {first_name}]]!",
}

# Step bodies after the greeting; {about} is the workflow's noun phrase.
VOICE: dict[Tone, dict[str, dict[int, str]]] = {
    Tone.clinical: {
        "en": {
            1: "this is {practice_name}. {reason} Reply BOOK for open times or call "
            "{practice_phone}.",
            2: "{practice_name} here. To book {booking}, [[go to {booking_link} or ]]reply BOOK "
            "for open times. Not this month? Reply LATER and the month, e.g. LATER JUNE.",
            3: "{practice_name} here. Is something in the way of {about}: timing, cost, not "
            "sure it is needed, a question or concern, or no longer needed? A short reply is "
            "enough; a person reads it.",
            4: "this is the last message from {practice_name} about {about}; no more will follow "
            "about it. To book, reply BOOK or call {practice_phone}. To pause, reply LATER and a "
            "month; to decline, reply NO.",
        },
        "es": {
            1: "le escribe {practice_name}. {reason} Responda CITA para ver horarios o llame al "
            "{practice_phone}.",
            2: "le escribe {practice_name}. Para reservar {booking}, [[entre en {booking_link} "
            "o ]]responda CITA para ver horarios. ¿Mejor otro mes? Responda MAS TARDE y el "
            "mes, p. ej. MAS TARDE JUNIO.",
            3: "le escribe {practice_name}. Sobre {about}: ¿algo se lo impide? El horario, el "
            "costo, no saber si lo necesita, una pregunta o inquietud, o que ya no lo necesite. "
            "Basta una respuesta corta; la lee una persona.",
            4: "este es el último mensaje de {practice_name} sobre {about}; no enviaremos más "
            "sobre esto. Para reservar, responda CITA o llame al {practice_phone}. Para pausar, "
            "responda MAS TARDE y un mes; para no seguir, responda NO.",
        },
    },
    Tone.supportive: {
        "en": {
            1: "this is {practice_name}. {reason} If you would like to book, reply BOOK and we "
            "will send you open times, or call {practice_phone}.",
            2: "booking {booking} at {practice_name} is quick: [[choose a time at {booking_link} "
            "or ]]reply BOOK for open times. Not now? Reply LATER and the month and we will "
            "write then.",
            3: "we have not heard back about {about}, and that is okay. Is it timing, cost, not "
            "being sure you need it, a question or worry, or is it no longer needed? A few "
            "words are enough; a person at {practice_name} reads every reply.",
            4: "this is the last message from {practice_name} about {about}; we will not write "
            "about it again. When you are ready, reply BOOK or call {practice_phone}. To pause, "
            "reply LATER and a month; to decline, reply NO. Take care.",
        },
        "es": {
            1: "le escribe {practice_name}. {reason} Si desea reservar, responda CITA y le "
            "enviaremos horarios, o llame al {practice_phone}.",
            2: "reservar {booking} en {practice_name} es rápido: [[elija un horario en "
            "{booking_link} o ]]responda CITA y le enviaremos algunos. ¿Ahora no? Responda MAS "
            "TARDE y el mes y le escribiremos entonces.",
            3: "no hemos sabido de usted sobre {about}, y está bien. ¿Es el horario, el costo, "
            "no estar seguro de necesitarlo, una pregunta o preocupación, o ya no lo necesita? "
            "Una persona de {practice_name} lee cada respuesta.",
            4: "este es el último mensaje de {practice_name} sobre {about}; no le escribiremos "
            "más sobre esto. Cuando guste, responda CITA o llame al {practice_phone}. Para "
            "pausar, responda MAS TARDE y un mes; para no seguir, NO. Cuídese.",
        },
    },
    Tone.friendly: {
        "en": {
            1: "It's {practice_name}. {reason} Want to pick a time? Reply BOOK and we'll send "
            "you a few, or call {practice_phone}.",
            2: "Planning {booking} with {practice_name}? [[Book at {booking_link} or ]]reply "
            "BOOK for a few open times. Busy month? Reply LATER and the month and we'll write "
            "then.",
            3: "Quick question about {about}: is it timing, cost, not sure it's for you, a "
            "question, or no longer needed? Reply in a word; a person at {practice_name} reads "
            "it.",
            4: "This is the last note from {practice_name} about {about}; we won't send more "
            "about it. Reply BOOK "
            "anytime or call {practice_phone}. Reply LATER and a month to pause, or NO to "
            "decline.",
        },
        "es": {
            1: "Le escribe {practice_name}. {reason} ¿Quiere elegir un horario? Responda CITA y "
            "le enviaremos algunos, o llame al {practice_phone}.",
            2: "¿Planeando {booking} con {practice_name}? [[Reserve en {booking_link} o ]]"
            "responda CITA para ver horarios. ¿Mes ocupado? Responda MAS TARDE y el mes y le "
            "escribimos entonces.",
            3: "Una pregunta rápida sobre {about}: ¿es el horario, el costo, no estar seguro de "
            "que sea para usted, una pregunta, o ya no lo necesita? Responda en una palabra; lo "
            "lee una persona de {practice_name}.",
            4: "Último mensaje de {practice_name} sobre {about}: no enviaremos más sobre esto. "
            "Responda CITA cuando quiera o llame al {practice_phone}. Responda MAS TARDE y un "
            "mes para pausar, o NO para no seguir.",
        },
    },
}

# Cancellation recovery opens as the playbook asks: the cancellation confirmed (date, service,
# provider), a new time offered with the same provider for the same visit, a question invited.
CANCELLATION_FIRST: Words = {
    "en": "this is {practice_name}. {reason} Would you like a new time[[ with {provider_name}]] "
    "for the same visit? Reply BOOK for open times. Do you have a question? Just reply with it.",
    "es": "le escribe {practice_name}. {reason} ¿Quiere otra hora[[ con {provider_name}]] para "
    "la misma visita? Responda CITA para ver horarios. ¿Tiene alguna pregunta? Escríbala aquí.",
}

# --- service recovery: a person listens first; no booking push --------------------------------

RECOVERY: dict[str, dict[int, str]] = {
    "en": {
        1: "this is {practice_name}. {reason} We would like to hear what happened: reply here "
        "or call {practice_phone}.",
        2: "{practice_name} again. If a call is easier, reply with a good time and a member of "
        "our team will call you.",
        3: "is there anything we could do better next time? Just reply; a person at "
        "{practice_name} reads every message.",
        4: "thank you for your patience. We will not follow up again about this, and you can "
        "reach {practice_name} anytime at {practice_phone}.",
    },
    "es": {
        1: "le escribe {practice_name}. {reason} Queremos saber qué pasó: responda aquí o llame "
        "al {practice_phone}.",
        2: "le escribe otra vez {practice_name}. Si prefiere una llamada, responda con un buen "
        "horario y alguien de nuestro equipo le llamará.",
        3: "¿hay algo que podamos hacer mejor la próxima vez? Responda; una persona de "
        "{practice_name} lee cada mensaje.",
        4: "gracias por su paciencia. No le escribiremos más sobre esto y puede llamar a "
        "{practice_name} cuando quiera al {practice_phone}.",
    },
}

SMS_OPT_OUT = {"en": "Reply STOP to opt out.", "es": "Responda STOP para no recibir mensajes."}

SUBJECTS: dict[str, dict[int, str]] = {
    "en": {
        1: "About your {service_name}",
        2: "Booking takes a minute",
        3: "Is something in the way?",
        4: "Our last message about this",
    },
    "es": {
        1: "Sobre su {service_name}",
        2: "Reservar toma un minuto",
        3: "¿Hay algo que se lo impida?",
        4: "Nuestro último mensaje sobre esto",
    },
}
RECOVERY_SUBJECTS: dict[str, dict[int, str]] = {
    "en": {
        1: "We are sorry",
        2: "Would a call help?",
        3: "How could we do better?",
        4: "Thank you[[, {first_name}]]",
    },
    "es": {
        1: "Lo sentimos",
        2: "¿Le ayudaría una llamada?",
        3: "¿Cómo podemos mejorar?",
        4: "Gracias[[, {first_name}]]",
    },
}

EMAIL_FRAME = {
    "en": "{greet},\n\n{middle}\n\n{practice_name}\n{practice_phone}\n\n"
    "You receive this because you are a patient of {practice_name}. To stop these e-mails, "
    "reply STOP or UNSUBSCRIBE.",
    "es": "{greet}:\n\n{middle}\n\n{practice_name}\n{practice_phone}\n\n"
    "Recibe este correo porque es paciente de {practice_name}. Para no recibir más correos, "
    "responda STOP o UNSUBSCRIBE.",
}

STEPS = (1, 2, 3, 4)
LIBRARY_AUTHOR = "system:default-library"


def _compose(text: str, **parts: str) -> str:
    # Only the library's own slots are filled here; {variables} stay for render time.
    for name, value in parts.items():
        text = text.replace("{" + name + "}", value)
    return text


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _tone_of(workflow: str, tone: Tone | None) -> Tone:
    return tone or WORKFLOWS[workflow].tone


def step_words(workflow: str, step: int, language: str, tone: Tone | None = None) -> str:
    """A step's words after the greeting (the SMS and the e-mail share them)."""
    words = WORKFLOWS[workflow]
    if workflow == "service_recovery":
        return RECOVERY[language][step]
    if workflow == "cancellation_recovery" and step == 1:
        return CANCELLATION_FIRST[language]
    booking = (words.booking or words.about)[language]
    voice = VOICE[_tone_of(workflow, tone)][language][step]
    return _compose(voice, about=words.about[language], booking=booking)


def sms_body(workflow: str, step: int, language: str, tone: Tone | None = None) -> str:
    greet = GREETING[(_tone_of(workflow, tone), language)]
    body = step_words(workflow, step, language, tone)
    text = f"{greet} {_capital(body)}" if greet.endswith("!") else f"{greet}, {body}"
    if step == 1:
        text += " " + SMS_OPT_OUT[language]
    return text


def email_body(workflow: str, step: int, language: str, tone: Tone | None = None) -> str:
    greet = GREETING[(_tone_of(workflow, tone), language)].rstrip("!").replace("¡", "")
    middle = _capital(step_words(workflow, step, language, tone))
    return _compose(EMAIL_FRAME[language], greet=greet, middle=middle)


# A lapse has no particular visit due: its first subject says only what is true.
LAPSED_FIRST_SUBJECT = {"en": "It has been a while", "es": "Ha pasado un tiempo"}


def subject(workflow: str, step: int, language: str) -> str:
    if workflow == "lapsed_patient" and step == 1:
        return LAPSED_FIRST_SUBJECT[language]
    table = RECOVERY_SUBJECTS if workflow == "service_recovery" else SUBJECTS
    return table[language][step]


def tones_of(workflow: str) -> tuple[Tone, ...]:
    """The tones a workflow's words are written in: its own first, then the others (a clinic
    may set another tone for a step); service recovery keeps its one voice."""
    own = WORKFLOWS[workflow].tone
    if workflow == "service_recovery":
        return (own,)
    return (own, *(t for t in Tone if t is not own))


def default_library() -> list[Template]:
    """Every default template (approved version 1 when first seeded)."""
    out: list[Template] = []
    for workflow, words in WORKFLOWS.items():
        for tone in tones_of(workflow):
            for language in ("en", "es"):
                for step in STEPS:
                    sms = sms_body(workflow, step, language, tone)
                    mail = email_body(workflow, step, language, tone)
                    title = subject(workflow, step, language)
                    out += [
                        Template(
                            workflow, step, Channel.sms, tone, language, sms, None, words.purpose
                        ),
                        Template(
                            workflow,
                            step,
                            Channel.email,
                            tone,
                            language,
                            mail,
                            title,
                            words.purpose,
                        ),
                    ]
    return out


def workflow_tone(workflow_key: str) -> Tone | None:
    words = WORKFLOWS.get(workflow_key)
    return words.tone if words else None
