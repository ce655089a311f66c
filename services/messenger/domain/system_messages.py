"""The messenger's own replies in a conversation (keyword answers, safety reply, slot offers).

They are fixed, reviewed words (a test lints every one), not workflow templates: they answer
what a patient just wrote, so they go out whatever the hour and, for the one opt-out
confirmation and safety replies, even to a patient who has opted out.
"""

from __future__ import annotations

from enum import StrEnum

from services.messenger.domain.templates import Template, fill
from shared.events.common import Channel, ClinicalUrgency
from shared.events.outreach import Tone


class Reply(StrEnum):
    stop_confirmation = "stop_confirmation"
    stop_confirmation_asked = "stop_confirmation_asked"  # the reply also asked something else
    start_confirmation = "start_confirmation"
    help = "help"
    safety = "safety"
    clinical_ack = "clinical_ack"
    question_ack = "question_ack"
    concern_ack = "concern_ack"
    slot_offer = "slot_offer"
    slot_offer_same_provider = "slot_offer_same_provider"
    slot_offer_other_provider = "slot_offer_other_provider"
    slot_offer_any_provider = "slot_offer_any_provider"
    booking_link = "booking_link"
    callback = "callback"
    booking_requested = "booking_requested"
    slot_taken = "slot_taken"
    snooze_ack = "snooze_ack"
    decline_ack = "decline_ack"
    no_longer_needed_ack = "no_longer_needed_ack"
    wrong_number_ack = "wrong_number_ack"
    booking_ack = "booking_ack"
    booking_by_staff = "booking_by_staff"
    freed_slot_gone = "freed_slot_gone"


TEXTS: dict[Reply, dict[str, str]] = {
    Reply.stop_confirmation: {
        "en": "{practice_name}: You are unsubscribed and will get no more messages here. "
        "To hear from us another way, call {practice_phone}. Reply START to resubscribe.",
        "es": "{practice_name}: Se ha dado de baja y no recibirá más mensajes aquí. "
        "Para recibirlos de otra forma, llame al {practice_phone}. Responda START para volver "
        "a suscribirse.",
    },
    Reply.stop_confirmation_asked: {
        "en": "{practice_name}: You are unsubscribed and will get no more messages here. You "
        "also asked us something: call {practice_phone} and we will answer, and tell you how "
        "else you can hear from us. Reply START to resubscribe.",
        "es": "{practice_name}: Se ha dado de baja y no recibirá más mensajes aquí. También nos "
        "preguntó algo: llame al {practice_phone} y le responderemos, y le diremos de qué otra "
        "forma puede recibir mensajes. Responda START para volver a suscribirse.",
    },
    Reply.start_confirmation: {
        "en": "{practice_name}: You are subscribed again to appointment messages. Reply HELP "
        "for help. Msg & data rates may apply. Reply STOP to opt out.",
        "es": "{practice_name}: Está suscrito de nuevo a los mensajes de citas. Responda HELP "
        "para ayuda. Msg & data rates may apply. Responda STOP para no recibir mensajes.",
    },
    Reply.help: {
        "en": "{practice_name}: appointment reminders and care follow-ups. Questions? Call "
        "{practice_phone}. Msg & data rates may apply. Reply STOP to opt out.",
        "es": "{practice_name}: recordatorios de citas y seguimiento. ¿Preguntas? Llame al "
        "{practice_phone}. Msg & data rates may apply (pueden aplicarse tarifas de mensajes y "
        "datos). Responda STOP para no recibir mensajes.",
    },
    Reply.safety: {
        "en": "Thank you for telling us. We have alerted the care team at {practice_name} and "
        "a person will contact you. If this is an emergency, call {emergency_number} or go to "
        "the nearest emergency room. You can also call us at {practice_phone}.",
        "es": "Gracias por avisarnos. Ya alertamos al equipo de {practice_name} y una persona "
        "le contactará. Si es una emergencia, llame al {emergency_number} o vaya a la sala de "
        "emergencias más cercana. También puede llamarnos al {practice_phone}.",
    },
    Reply.clinical_ack: {
        "en": "Thank you. A member of our care team will reply; we do not give medical advice "
        "by text. If it cannot wait, call {practice_phone}. In an emergency call "
        "{emergency_number}.",
        "es": "Gracias. Una persona de nuestro equipo le responderá; no damos consejos médicos "
        "por mensaje. Si no puede esperar, llame al {practice_phone}. En una emergencia llame "
        "al {emergency_number}.",
    },
    Reply.question_ack: {
        "en": "Thanks for your question. A member of our team will reply during office hours, "
        "or you can call {practice_phone}.",
        "es": "Gracias por su pregunta. Una persona de nuestro equipo le responderá en horario "
        "de oficina, o puede llamar al {practice_phone}.",
    },
    Reply.concern_ack: {
        "en": "Thank you for telling us. A member of our team will be in touch, or you can call "
        "{practice_phone}.",
        "es": "Gracias por contarnos. Una persona de nuestro equipo le contactará, o puede "
        "llamar al {practice_phone}.",
    },
    Reply.slot_offer: {
        "en": "{practice_name} has these times for your {service_name}: {slot_list}. Reply 1, 2 "
        "or 3 to choose, or call {practice_phone}.",
        "es": "{practice_name} tiene estos horarios para su {service_name}: {slot_list}. "
        "Responda 1, 2 o 3 para elegir, o llame al {practice_phone}.",
    },
    # Cancellation recovery offers the same provider first and says so; when that provider has
    # no time soon, it says that too and names whose times these are.
    Reply.slot_offer_same_provider: {
        "en": "{provider_name} has these times for your {service_name}: {slot_list}. Reply 1, 2 "
        "or 3 to choose, or call {practice_phone}.",
        "es": "{provider_name} tiene estos horarios para su {service_name}: {slot_list}. "
        "Responda 1, 2 o 3 para elegir, o llame al {practice_phone}.",
    },
    Reply.slot_offer_other_provider: {
        "en": "{provider_name} has no open times soon. {other_provider_name} has these for your "
        "{service_name}: {slot_list}. Reply 1, 2 or 3 to choose, or call {practice_phone}.",
        "es": "{provider_name} no tiene horarios pronto. {other_provider_name} tiene estos para "
        "su {service_name}: {slot_list}. Responda 1, 2 o 3, o llame al {practice_phone}.",
    },
    Reply.slot_offer_any_provider: {
        "en": "{provider_name} has no open times soon; another of our providers has these for "
        "your {service_name}: {slot_list}. Reply 1, 2 or 3 to choose, or call {practice_phone}.",
        "es": "{provider_name} no tiene horarios pronto; otro profesional tiene estos para su "
        "{service_name}: {slot_list}. Responda 1, 2 o 3, o llame al {practice_phone}.",
    },
    Reply.booking_link: {
        "en": "We could not find an open time by text. Book online at {booking_link} or call "
        "{practice_phone} and we will find one with you.",
        "es": "No encontramos un horario por mensaje. Reserve en {booking_link} o llame al "
        "{practice_phone} y buscaremos uno con usted.",
    },
    Reply.callback: {
        "en": "We could not find an open time by text, so a member of our team will call you "
        "to find one. You can also call {practice_phone}.",
        "es": "No encontramos un horario por mensaje; una persona de nuestro equipo le llamará "
        "para buscar uno. También puede llamar al {practice_phone}.",
    },
    Reply.booking_requested: {
        "en": "Thank you! We have requested {slot_time} for your {service_name}. {practice_name} "
        "will confirm it with you.",
        "es": "¡Gracias! Pedimos {slot_time} para su {service_name}. {practice_name} se lo "
        "confirmará.",
    },
    Reply.slot_taken: {
        "en": "Sorry, that time was just taken. We will send you other open times shortly.",
        "es": "Lo sentimos, ese horario se acaba de ocupar. Le enviaremos otros horarios en breve.",
    },
    # A freed slot offered to several patients (its words are approved templates, see
    # freed_slot_words): the others hear that the time went, and how to find another.
    Reply.freed_slot_gone: {
        "en": "Sorry, the time on {slot_time} has already been taken. To find another time, "
        "reply BOOK or call {practice_phone}.",
        "es": "Lo sentimos, el horario del {slot_time} ya se ocupó. Para buscar otro horario, "
        "responda CITA o llame al {practice_phone}.",
    },
    Reply.snooze_ack: {
        "en": "No problem. We will check back after {snooze_date}.",
        "es": "Con gusto. Le escribiremos de nuevo después del {snooze_date}.",
    },
    Reply.decline_ack: {
        "en": "Understood, thank you for letting us know. If you change your mind, call "
        "{practice_phone}.",
        "es": "Entendido, gracias por avisarnos. Si cambia de opinión, llame al {practice_phone}.",
    },
    Reply.no_longer_needed_ack: {
        "en": "Thank you for letting us know. We have updated our records.",
        "es": "Gracias por avisarnos. Ya actualizamos nuestros registros.",
    },
    Reply.wrong_number_ack: {
        "en": "Sorry for the mix-up. We have removed this number from our messages.",
        "es": "Disculpe la confusión. Quitamos este número de nuestros mensajes.",
    },
    Reply.booking_ack: {
        "en": "Thank you! We are looking for open times and will text you a few shortly.",
        "es": "¡Gracias! Estamos buscando horarios y le enviaremos algunos en breve.",
    },
    Reply.booking_by_staff: {
        "en": "Thank you! We have passed {slot_time} for your {service_name} to our team, and a "
        "person will confirm it with you. You can also call {practice_phone}.",
        "es": "¡Gracias! Pasamos {slot_time} para su {service_name} a nuestro equipo y una "
        "persona se lo confirmará. También puede llamar al {practice_phone}.",
    },
}

# Replies that may reach a patient who has opted out of the channel (they answer them).
ALWAYS_ALLOWED = frozenset(
    {Reply.stop_confirmation, Reply.stop_confirmation_asked, Reply.safety, Reply.help}
)


def as_template(reply: Reply, language: str, channel: Channel = Channel.sms) -> Template:
    """The reply as a template, so the linter can judge it (urgent words allowed in safety)."""
    urgency = (
        ClinicalUrgency.urgent
        if reply in (Reply.safety, Reply.clinical_ack)
        else (ClinicalUrgency.routine)
    )
    subject = "Re: your message" if channel is Channel.email else None
    return Template(
        "conversation",
        99,
        channel,
        Tone.supportive,
        language,
        TEXTS[reply][language],
        subject,
        urgency=urgency,
    )


def text_of(reply: Reply, language: str, values: dict[str, str | None]) -> str:
    lang = language if language in TEXTS[reply] else "en"
    return fill(TEXTS[reply][lang], values, lang)
