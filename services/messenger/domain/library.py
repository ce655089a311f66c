"""The default template library: every workflow step, SMS and e-mail, English and Spanish.

Each workflow's four steps follow the practice playbook: 1 a relevant reminder, 2 remove
friction, 3 understand the barrier, 4 close respectfully. The wording names the visit the way a
patient would (``{service_name}``), never a condition, carries no urgency beyond routine and no
offer (Revisit never sends mass discounts), and every message passes the linter; a test checks
all of them. Seeded into the database at start-up as approved version 1; a practice can add
its own versions through the ops API.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.messenger.domain.templates import Template
from shared.events.common import Channel, Purpose
from shared.events.outreach import Tone


@dataclass(frozen=True)
class WorkflowWords:
    tone: Tone
    purpose: Purpose
    reason: dict[str, str]  # language -> the sentence that says why we are writing


WORKFLOWS: dict[str, WorkflowWords] = {
    "skin_cancer_surveillance": WorkflowWords(
        Tone.clinical,
        Purpose.care,
        {
            "en": "Your regular {service_name} with {provider_name} is due in {due_month}.",
            "es": "Su {service_name} periódica con {provider_name} corresponde en {due_month}.",
        },
    ),
    "chronic_review": WorkflowWords(
        Tone.clinical,
        Purpose.care,
        {
            "en": "The {service_name} planned at your last visit with {provider_name} is due in "
            "{due_month}.",
            "es": "Su {service_name} con {provider_name}, planeada en su última visita, "
            "corresponde en {due_month}.",
        },
    ),
    "follow_up": WorkflowWords(
        Tone.supportive,
        Purpose.care,
        {
            "en": "At your last visit, {provider_name} asked to see you again for a "
            "{service_name}.",
            "es": "En su última visita, {provider_name} pidió verle de nuevo para su "
            "{service_name}.",
        },
    ),
    "treatment_series": WorkflowWords(
        Tone.supportive,
        Purpose.care,
        {
            "en": "Your next {service_name} in your treatment plan is ready to book.",
            "es": "Ya puede reservar lo siguiente de su plan de tratamiento: {service_name}.",
        },
    ),
    "acne_follow_up": WorkflowWords(
        Tone.supportive,
        Purpose.care,
        {
            "en": "It is time for your {service_name} with {provider_name} to see how things "
            "are going.",
            "es": "Es momento de su {service_name} con {provider_name} para ver cómo va todo.",
        },
    ),
    "cosmetic_maintenance": WorkflowWords(
        Tone.friendly,
        Purpose.marketing,
        {
            "en": "It may be time to plan your next {service_name} with {provider_name}.",
            "es": "Quizás ya sea momento de planear otra visita para su {service_name} con "
            "{provider_name}.",
        },
    ),
    "consult_not_started": WorkflowWords(
        Tone.supportive,
        Purpose.care,
        {
            "en": "After your consultation, {provider_name} suggested a {service_name}. We can "
            "help you get started.",
            "es": "Después de su consulta, {provider_name} sugirió: {service_name}. Podemos "
            "ayudarle a empezar.",
        },
    ),
    "cancellation_recovery": WorkflowWords(
        Tone.supportive,
        Purpose.care,
        {
            "en": "Your {service_name} was cancelled.",
            "es": "Su cita ({service_name}) fue cancelada.",
        },
    ),
    "lapsed_patient": WorkflowWords(
        Tone.supportive,
        Purpose.care,
        {
            "en": "It has been a while since your last visit, and we would be glad to see you "
            "for a {service_name}.",
            "es": "Ha pasado un tiempo desde su última visita y nos gustaría verle para su "
            "{service_name}.",
        },
    ),
    "service_recovery": WorkflowWords(
        Tone.supportive,
        Purpose.care,
        {
            "en": "We are sorry your last visit did not go as it should have.",
            "es": "Lamentamos que su última visita no haya sido como debía.",
        },
    ),
}

GREETING = {
    (Tone.clinical, "en"): "Hello",
    (Tone.supportive, "en"): "Hi",
    (Tone.friendly, "en"): "Hi",
    (Tone.clinical, "es"): "Hola",
    (Tone.supportive, "es"): "Hola",
    (Tone.friendly, "es"): "¡Hola",
}

# --- booking workflows: one skeleton per step, the workflow's reason in step 1 ---------------

SMS_STEPS = {
    "en": {
        1: "{greet} {first_name}, this is {practice_name}. {reason} Reply BOOK to see open times "
        "or call {practice_phone}. Reply STOP to opt out.",
        2: "{greet} {first_name}, booking your {service_name} takes a minute: {booking_link} or "
        "reply BOOK and we will text you open times. {practice_name}",
        3: "{greet} {first_name}, we have not heard back about your {service_name}. Is timing, "
        "cost or something else in the way? Just reply; a person at {practice_name} reads it.",
        4: "{greet} {first_name}, this is the last reminder from {practice_name} about your "
        "{service_name}. Whenever you are ready, reply BOOK or call {practice_phone}. Take care.",
    },
    "es": {
        1: "{greet} {first_name}, le escribe {practice_name}. {reason} Responda CITA para ver "
        "horarios o llame al {practice_phone}. Responda STOP para no recibir mensajes.",
        2: "{greet} {first_name}, reservar su {service_name} toma un minuto: {booking_link} o "
        "responda CITA y le enviaremos horarios. {practice_name}",
        3: "{greet} {first_name}, no hemos sabido de usted sobre su {service_name}. ¿Le impide "
        "algo venir, como el horario o el costo? Responda; una persona de {practice_name} lo lee.",
        4: "{greet} {first_name}, este es el último recordatorio de {practice_name} sobre su "
        "{service_name}. Cuando guste, responda CITA o llame al {practice_phone}. Cuídese.",
    },
}

EMAIL_SUBJECTS = {
    "en": {
        1: "Your {service_name} with {practice_name}",
        2: "Booking your {service_name} takes a minute",
        3: "Is something in the way?",
        4: "Our last reminder about your {service_name}",
    },
    "es": {
        1: "Su {service_name} con {practice_name}",
        2: "Reservar su {service_name} toma un minuto",
        3: "¿Hay algo que se lo impida?",
        4: "Nuestro último recordatorio sobre su {service_name}",
    },
}

EMAIL_MIDDLE = {
    "en": {
        1: "{reason}\n\nYou can book online at {booking_link}, reply BOOK to this e-mail and we "
        "will send you open times, or call us at {practice_phone}.",
        2: "Booking your {service_name} takes a minute: choose a time at {booking_link}, or "
        "reply BOOK and we will send you a few open times.",
        3: "We have not heard back about your {service_name}. If timing, cost or something else "
        "is in the way, just reply and tell us. A person on our team reads every reply.",
        4: "This is our last reminder about your {service_name}. Whenever you are ready, reply "
        "BOOK or call us at {practice_phone}. Take care.",
    },
    "es": {
        1: "{reason}\n\nPuede reservar en línea en {booking_link}, responder CITA a este correo "
        "y le enviaremos horarios, o llamarnos al {practice_phone}.",
        2: "Reservar su {service_name} toma un minuto: elija un horario en {booking_link}, o "
        "responda CITA y le enviaremos algunos horarios disponibles.",
        3: "No hemos sabido de usted sobre su {service_name}. Si el horario, el costo u otra "
        "cosa se lo impide, responda y cuéntenos. Una persona de nuestro equipo lee cada "
        "respuesta.",
        4: "Este es nuestro último recordatorio sobre su {service_name}. Cuando guste, responda "
        "CITA o llámenos al {practice_phone}. Cuídese.",
    },
}

# --- service recovery: a person listens first; no booking push --------------------------------

RECOVERY_SMS = {
    "en": {
        1: "{greet} {first_name}, this is {practice_name}. {reason} We would like to hear what "
        "happened: reply here or call {practice_phone}. Reply STOP to opt out.",
        2: "{greet} {first_name}, {practice_name} again. If a call is easier, reply with a good "
        "time and a member of our team will call you.",
        3: "{greet} {first_name}, is there anything we could do better next time? Just reply; "
        "a person at {practice_name} reads every message.",
        4: "{greet} {first_name}, thank you for your patience. We will not follow up again about "
        "this, and you can reach {practice_name} anytime at {practice_phone}.",
    },
    "es": {
        1: "{greet} {first_name}, le escribe {practice_name}. {reason} Queremos saber qué pasó: "
        "responda aquí o llame al {practice_phone}. Responda STOP para no recibir mensajes.",
        2: "{greet} {first_name}, le escribe otra vez {practice_name}. Si prefiere una llamada, "
        "responda con un buen horario y alguien de nuestro equipo le llamará.",
        3: "{greet} {first_name}, ¿hay algo que podamos hacer mejor la próxima vez? Responda; "
        "una persona de {practice_name} lee cada mensaje.",
        4: "{greet} {first_name}, gracias por su paciencia. No le escribiremos más sobre esto y "
        "puede llamar a {practice_name} cuando quiera al {practice_phone}.",
    },
}

RECOVERY_SUBJECTS = {
    "en": {
        1: "We are sorry about your last visit",
        2: "Would a call help?",
        3: "How could we do better?",
        4: "Thank you, {first_name}",
    },
    "es": {
        1: "Lamentamos lo de su última visita",
        2: "¿Le ayudaría una llamada?",
        3: "¿Cómo podemos mejorar?",
        4: "Gracias, {first_name}",
    },
}

RECOVERY_MIDDLE = {
    "en": {
        1: "{reason} We would like to hear what happened and put it right. Reply to this e-mail "
        "or call us at {practice_phone}.",
        2: "If a call is easier, reply with a good time and a member of our team will call you.",
        3: "Is there anything we could do better next time? Just reply; a person on our team "
        "reads every message.",
        4: "Thank you for your patience. We will not follow up again about this, and you can "
        "reach us anytime at {practice_phone}.",
    },
    "es": {
        1: "{reason} Queremos saber qué pasó y corregirlo. Responda a este correo o llámenos al "
        "{practice_phone}.",
        2: "Si prefiere una llamada, responda con un buen horario y alguien de nuestro equipo le "
        "llamará.",
        3: "¿Hay algo que podamos hacer mejor la próxima vez? Responda; una persona de nuestro "
        "equipo lee cada mensaje.",
        4: "Gracias por su paciencia. No le escribiremos más sobre esto y puede llamarnos cuando "
        "quiera al {practice_phone}.",
    },
}

EMAIL_FRAME = {
    "en": "{greet} {first_name},\n\n{middle}\n\n{practice_name}\n{practice_phone}\n\n"
    "You receive this because you are a patient of {practice_name}. To stop these e-mails, "
    "reply STOP or UNSUBSCRIBE.",
    "es": "{greet} {first_name}:\n\n{middle}\n\n{practice_name}\n{practice_phone}\n\n"
    "Recibe este correo porque es paciente de {practice_name}. Para no recibir más correos, "
    "responda STOP o UNSUBSCRIBE.",
}

# The walking skeleton's words for cancellation recovery step 1, kept as they were.
SKELETON_SMS = {
    "en": "Hi {first_name}, this is {practice_name}. Your {service_name} was cancelled. "
    "Reply BOOK to pick a new time, or call {practice_phone}. Reply STOP to opt out.",
    "es": "Hola {first_name}, le escribe {practice_name}. Su cita ({service_name}) fue "
    "cancelada. Responda CITA para elegir otra hora o llame al {practice_phone}. "
    "Responda STOP para no recibir mensajes.",
}

STEPS = (1, 2, 3, 4)
LIBRARY_AUTHOR = "system:default-library"


def _greet(tone: Tone, language: str) -> str:
    greet = GREETING[(tone, language)]
    return greet


def _compose(text: str, **parts: str) -> str:
    # Only the library's own slots are filled here; {variables} stay for render time.
    for name, value in parts.items():
        text = text.replace("{" + name + "}", value)
    return text


def default_library() -> list[Template]:
    """Every default template (approved version 1 when seeded)."""
    out: list[Template] = []
    for workflow, words in WORKFLOWS.items():
        recovery = workflow == "service_recovery"
        for language in ("en", "es"):
            greet = _greet(words.tone, language)
            if words.tone is Tone.friendly and language == "es":
                # "¡Hola {first_name}!" opens and closes the exclamation.
                sms_greet, mail_greet = greet, greet
            else:
                sms_greet, mail_greet = greet, greet
            reason = words.reason[language]
            for step in STEPS:
                sms = (RECOVERY_SMS if recovery else SMS_STEPS)[language][step]
                if workflow == "cancellation_recovery" and step == 1:
                    sms = SKELETON_SMS[language]
                body = _compose(sms, greet=sms_greet, reason=reason)
                if words.tone is Tone.friendly and language == "es":
                    body = body.replace("{first_name},", "{first_name}!", 1)
                out.append(
                    Template(
                        workflow, step, Channel.sms, words.tone, language, body, None, words.purpose
                    )
                )
                middle = (RECOVERY_MIDDLE if recovery else EMAIL_MIDDLE)[language][step]
                email = _compose(
                    EMAIL_FRAME[language],
                    greet=mail_greet,
                    middle=_compose(middle, reason=reason),
                )
                if words.tone is Tone.friendly and language == "es":
                    email = email.replace("{first_name}:", "{first_name}!", 1)
                subject = (RECOVERY_SUBJECTS if recovery else EMAIL_SUBJECTS)[language][step]
                out.append(
                    Template(
                        workflow,
                        step,
                        Channel.email,
                        words.tone,
                        language,
                        email,
                        subject,
                        words.purpose,
                    )
                )
    return out


def workflow_tone(workflow_key: str) -> Tone | None:
    words = WORKFLOWS.get(workflow_key)
    return words.tone if words else None
