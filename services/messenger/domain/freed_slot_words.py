"""The freed-slot offer's words: approved templates like every step's, seeded into the shared
library (workflow ``freed_slot``, step 1); a practice may approve its own version through the
templates API, and the linter judges it like any other.

They give the true reason and nothing more: a time opened with a provider on a day, for the
patient's visit (named in patient words, never a condition); how to take it and that it goes to
the first reply; how to call; how to opt out (no patient asked for this message). Unknown
facts are never filled in: without a provider's display name the words say only "an earlier
time opened on ..."; the practice's name and number must be known, else nothing is sent.
"""

from __future__ import annotations

from services.messenger.domain.templates import Template
from shared.events.common import Channel, Purpose
from shared.events.outreach import Tone

WORKFLOW = "freed_slot"
STEP = 1
TONE = Tone.clinical

SMS = {
    "en": "{practice_name}: an earlier time opened[[ with {provider_name}]] on {slot_time} for "
    "your {service_name}. Reply 1 to take it (it goes to the first reply) or call "
    "{practice_phone}. Reply STOP to opt out.",
    "es": "{practice_name}: se liberó un horario más pronto[[ con {provider_name}]] el "
    "{slot_time} para su {service_name}. Responda 1 para tomarlo (será para la primera "
    "respuesta) o llame al {practice_phone}. Responda STOP para no recibir mensajes.",
}
EMAIL = {
    "en": "Hello,\n\nAn earlier time opened at {practice_name}[[ with {provider_name}]] on "
    "{slot_time} for your {service_name}. To take it, reply 1 to this e-mail; it goes to the "
    "first reply. You can also call {practice_phone}.\n\nTo stop these e-mails, reply STOP or "
    "UNSUBSCRIBE.",
    "es": "Hola,\n\nSe liberó un horario más pronto en {practice_name}[[ con {provider_name}]] "
    "el {slot_time} para su {service_name}. Para tomarlo, responda 1 a este correo; será para "
    "la primera respuesta. También puede llamar al {practice_phone}.\n\nPara no recibir estos "
    "correos, responda STOP o UNSUBSCRIBE.",
}
SUBJECT = {"en": "An earlier time opened", "es": "Se liberó un horario más pronto"}


def templates() -> list[Template]:
    """The library's versions: SMS and e-mail, English and Spanish."""
    out = []
    for language in ("en", "es"):
        out.append(Template(WORKFLOW, STEP, Channel.sms, TONE, language, SMS[language]))
        out.append(
            Template(
                WORKFLOW,
                STEP,
                Channel.email,
                TONE,
                language,
                EMAIL[language],
                SUBJECT[language],
                Purpose.care,
            )
        )
    return out
