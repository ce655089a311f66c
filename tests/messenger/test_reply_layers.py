"""Reply understanding, layer by layer (pure): consent words in their revoking and other senses,
red flags through misspellings, Spanish and negation, and the merge that can only add."""

from __future__ import annotations

import pytest

from services.messenger.domain.classifier import classify
from services.messenger.domain.consent import read_consent
from services.messenger.domain.keywords import Keyword
from services.messenger.domain.phrases import PhraseBook, PhraseError
from services.messenger.domain.red_flags import RedFlag, Safety, canonical, read_safety
from services.messenger.domain.reply_words import normalise
from shared.events.common import Channel
from shared.events.messages import ReplyIntent

# --- consent -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        "Stop.",
        "STOP. I've told you twice already",
        "how do I make these texts stop??",
        "unsub",
        "lose my number",
        "take me off your list",
        "don't text me again",
        "remove me",
        "no more messages",
        "leave me alone",
        "quit texting",
        "end this",
        "cancel",
        "Stop, and the spot is bleeding",
        "why don't you stop texting me",
        "revoke",
        "opt out",
        "please turn these messages off",
        "i want off this list",
        "stoooop 🙄",
        "who is this and how do I stop these",
        "can y'all not text me anymore",
        "I will not be needing these messages thank you",
        "no texts please, I can't read them on this phone",
        "bórrenme de la lista",
        "ya no me escriban",
        "BAJA. y tengo un lunar que se puso negro",
        "ya tengo otro doctor, ALTO. pero el lunar creció",
        "No vuelvan a escribirme.",
        "no quiero mas msj gracias",
        "cómo le hago para que ya no me llegue esto?",
        "Favor de no escribirme más",
        "Para!",
        "I withdraw my consent to be contacted",
        "I do not consent to texts",
        "quit blowing up my phone",
        "stop using my number",
        "I'm done with all these reminders",
        "please cease all communications",
        "discontinue",
        "stpo",
        "remove",
        "remove this please",
        "pls remove this number",
        "stop getting these please",
        "dont you ever text me again",
        "lets end this",
        "estoy harta de tantos mensajes",
        "párenle ya con los mensajes",
        "quiten este numero de la lista",
    ],
)
def test_every_reasonable_way_of_saying_stop_revokes(text: str) -> None:
    assert read_consent(text).revoke, text


@pytest.mark.parametrize(
    "text",
    [
        "please don't stop the reminders",
        "stop the minocycline?",
        "should I stop the cream before my visit",
        "I need to cancel my appointment on Friday",
        "it ended up healing fine",
        "quit smoking last year",
        "it won't stop bleeding",
        "I'll stop by the office next week",
        "the end of march works for me",
        "don't unsubscribe me, I like the reminders",
        "had to cancel bc my kid got sick, do i owe anything for the late cancel?",
        "can i just stop the dupixent for a couple weeks",
        "cancel my 2nd botox session please",
        "if I cancel my membership do I lose my units?",
        "La cita del viernes la tengo que cancelar",
        "cuando puedo parar de ponerle la pomada?",
        "No me paren los mensajes, los necesito",
        "para cuando hay cita?",
        "I texted stop by mistake, please start texting me again",
        "should i stop taking it before the laser?",
        "can I quit using the retinol for a week",
        "on one end the scar is still red",
        "sorry for cancelling last time, can I book",
        "perdón por cancelar la otra vez",
        "me equivoqué al mandar STOP, sí quiero los mensajes",
        "estoy de baja médica hasta mayo",
        "please don't ever stop sending the reminders",
        "can you remove this mole?",
        "when do you remove my stitches?",
        "why don't u text me the address",
    ],
)
def test_the_same_words_in_another_sense_do_not_revoke(text: str) -> None:
    assert not read_consent(text).revoke, text


def test_carrier_keywords_say_their_scope() -> None:
    assert read_consent("STOPALL").every_channel
    assert read_consent("STOP").keyword is Keyword.opt_out
    assert read_consent("stop texting and emailing me").channels == {Channel.sms, Channel.email}


def test_yes_opts_in_only_a_patient_who_opted_out_but_start_always_does() -> None:
    assert read_consent("YES", opted_out=True).opt_in
    assert not read_consent("YES").opt_in
    assert read_consent("START").opt_in and read_consent("unstop. necesito cita").opt_in
    assert read_consent("Can you put me back on the text reminders?").opt_in


def test_help_is_a_command_only_at_the_start() -> None:
    assert read_consent("HELP").help and read_consent("AYUDA porfa").help
    assert read_consent("HELP what is this").help
    assert not read_consent("can you help me with my insurance").help


def test_a_revocation_outranks_an_opt_in_in_the_same_reply() -> None:
    reading = read_consent("START. no wait, stop texting me")
    assert reading.revoke and not reading.opt_in


# --- clinical safety -------------------------------------------------------------------------


def safety(text: str) -> Safety:
    return read_safety(normalise(text)).level


@pytest.mark.parametrize(
    "text",
    [
        "yes book me, also the biopsy site is oozing",
        "bleding wont stop",
        "my lip is swolen after filler",
        "my eyelid is drooping more and my vision is blurry since the botox",
        "been having really dark thoughts on the accutane",
        "yes please! also kinda hard to breathe since the injection",
        "the wound opened up after surgery",
        "the skin near my lip turned white after the filler",
        "no fever but my lip is swollen",
        "se me hinchó la cara después del láser",
        "tengo fiebre y pus en la herida",
        "la herida de la biopsia no deja de sangrar",
        "se me cayó el párpado con el botox y cada día está peor",
        "the mole on my back is bigger and darker",
        "i have burn marks from the laser session and theyre getting worse",
        "passed out in the shower",
    ],
)
def test_red_flags_are_caught_through_typos_spanish_and_other_words(text: str) -> None:
    assert safety(text) is Safety.red_flag, text


@pytest.mark.parametrize(
    "text",
    [
        "no bleeding anymore",
        "the swelling went down",
        "no tengo fiebre",
        "ya se me bajó la hinchazón del labio, todo bien",
        "update it finally stopped bleeding overnight",
        "the redness around the biopsy isnt spreading, its smaller today",
        "a little bit of blood on the bandage, is that normal?",
    ],
)
def test_negated_or_resolved_mentions_are_clinical_not_urgent(text: str) -> None:
    assert safety(text) is Safety.clinical, text


@pytest.mark.parametrize(
    "text",
    [
        "I'll be back in february",
        "which location, the one by the hospital?",
        "do I need blood work first?",
        "sorry I cancelled, I had a family emergency",
        "No me paren los mensajes, los necesito para acordarme de la inyeccion",
    ],
)
def test_everyday_words_that_look_like_symptoms_are_not_red_flags(text: str) -> None:
    assert safety(text) is not Safety.red_flag, text


def test_misspellings_are_corrected_only_towards_the_safety_words() -> None:
    assert canonical("bleding and swolen") == "bleeding and swollen"
    assert canonical("while the injection") == "while the injection"  # ordinary words stay


def test_a_red_flag_names_its_kind() -> None:
    flags = read_safety(normalise("throat feels tight and i have hives")).flags
    assert RedFlag.allergic_reaction in flags


# --- a practice's own phrases ------------------------------------------------------------------


def test_a_practices_own_phrases_add_readings_for_that_clinic_only() -> None:
    book = PhraseBook.parse(
        {
            "*": {"revoke": ["take me off the recall list"]},
            "clinic-a": {"red_flag": ["graft looks black"], "book": ["put me on the books"]},
        }
    )
    reading = book.reading("The GRAFT looks black!", "clinic-a")
    assert reading is not None and reading.safety is Safety.red_flag
    assert book.reading("the graft looks black", "clinic-b") is None
    everywhere = book.reading("pls take me off the recall list", "clinic-b")
    assert everywhere is not None and everywhere.revoke
    u = classify("put me on the books", extra=[book.reading("put me on the books", "clinic-a")])
    assert u.intent is ReplyIntent.book and u.sure


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ([], "phrases: must be an object"),
        ({"*": {"stop": ["x"]}}, "phrases.*.stop: not one of"),
        ({"c": {"revoke": "x"}}, "phrases.c.revoke: must be a list"),
    ],
)
def test_a_phrase_file_with_a_mistake_is_refused_where_it_is(raw: object, error: str) -> None:
    with pytest.raises(PhraseError, match=error.replace("*", r"\*").replace(".", r"\.")):
        PhraseBook.parse(raw)
