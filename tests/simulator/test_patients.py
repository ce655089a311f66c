"""The simulated patients' behaviour, judged by the messenger's own reply classifier and by
the messenger's own words (its default templates and conversation replies)."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from statistics import median

import pytest

from services.messenger.domain import freed_slot_words
from services.messenger.domain.classifier import classify
from services.messenger.domain.library import WORKFLOWS, default_library
from services.messenger.domain.system_messages import TEXTS
from services.messenger.domain.system_messages import Reply as SystemReply
from services.messenger.domain.templates import fill
from shared.events.common import Channel
from shared.events.messages import Barrier
from simulator.model import Journey, Patient, Persona
from simulator.patients import (
    Conversations,
    ConversationState,
    Heard,
    Inbound,
    Meaning,
    Reply,
    answer,
    heard,
    offer_choices,
)
from simulator.phrases import COST, PHRASES

SEED = 20260302
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
VALUES = {
    "first_name": "Ana",
    "practice_name": "Lakeside Dermatology",
    "practice_phone": "555-0100",
    "provider_name": "Dr. Rivera",
    "service_name": "skin check",
    "due_month": "March 2026",
    "booking_link": "lakeside.example.org/book",
    "emergency_number": "911",
    "slot_list": "1) Tue Mar 3, 9:00 AM; 2) Tue Mar 3, 11:00 AM; 3) Wed Mar 4, 2:00 PM",
    "slot_time": "Tue Mar 3, 9:00 AM",
    "snooze_date": "March 16",
}


def patient(n: int, persona: Persona, journey: Journey = Journey.follow_up, lang: str = "en"):
    return Patient(
        patient_id=f"P-{n:06d}",
        given_name="Ana",
        family_name="Synthetic",
        birth_date=date(1970, 1, 1),
        sex="female",
        phone="+15555550101",
        email="ana@example.com",
        language=lang,
        persona=persona,
        journey=journey,
        home_location_id="loc-1",
        provider_id="dr-1",
        marketing_consent=True,
    )


@functools.cache
def outreach(step: int, lang: str = "en", workflow: str = "follow_up") -> str:
    [template] = [
        t
        for t in default_library()
        if (t.workflow_key, t.step, t.channel, t.language) == (workflow, step, Channel.sms, lang)
        and t.tone is WORKFLOWS[workflow].tone
    ]
    return fill(template.body, VALUES, lang)


def system(reply: SystemReply, lang: str = "en") -> str:
    return fill(TEXTS[reply][lang], VALUES, lang)


SLOT_OFFERS = {
    SystemReply.slot_offer,
    SystemReply.slot_offer_same_provider,
    SystemReply.slot_offer_other_provider,
    SystemReply.slot_offer_any_provider,
}
# After these the sequence ends: no more reminders.
CLOSING = {Meaning.choose_slot, Meaning.decline, Meaning.no_longer_needed, Meaning.opt_out}


def conversation(p: Patient, seed: int = SEED, steps: int = 4) -> Iterator[tuple[Inbound, Reply]]:
    """Plays the messenger's side as it answers: BOOK gets an offer, a choice a confirmation."""
    state, at = ConversationState(), NOW
    queue = [(f"{p.patient_id}-out-{k}", outreach(k, p.language)) for k in range(1, steps + 1)]
    while queue:
        message_id, body = queue.pop(0)
        inbound = Inbound(message_id, body, at, is_slot_offer=heard(body) is Heard.slot_offer)
        reply = answer(p, p.journey, inbound, state, seed=seed)
        state = state.after(inbound, reply)
        at += timedelta(days=3)
        if reply is None:
            continue
        yield inbound, reply
        follow = {
            Meaning.book: SystemReply.slot_offer,
            Meaning.choose_slot: SystemReply.booking_requested,
            Meaning.opt_out: SystemReply.stop_confirmation,
            Meaning.later: SystemReply.snooze_ack,
        }.get(reply.meaning)
        if reply.meaning in CLOSING:
            queue = []
        if follow is not None:
            queue.insert(0, (f"{message_id}-re", system(follow, p.language)))


# A practice's mix of people, in tenths of a percent of its patients.
MIX = {
    Persona.prompt: 300,
    Persona.busy: 150,
    Persona.price_sensitive: 120,
    Persona.anxious: 130,
    Persona.done: 100,
    Persona.silent: 200,
}


def population(count: int) -> Iterator[Patient]:
    personas = [persona for persona, share in MIX.items() for _ in range(share)]
    journeys = [j for j in Journey if j is not Journey.regular]
    for n in range(count):
        lang = "es" if n % 4 == 3 else "en"
        persona = personas[(n * 7919) % len(personas)]  # spread evenly, not in runs
        yield patient(n, persona, journeys[n % len(journeys)], lang)


# --- words the messenger understands ----------------------------------------------------------


def test_every_phrase_a_patient_can_send_is_understood_as_meant_by_the_messenger():
    for (meaning, _lang, flavour), pool in PHRASES.items():
        for text in pool:
            if meaning is Meaning.choose_slot:
                for offered in (2, 3):
                    for n in range(1, offered + 1):
                        got = classify(text.replace("{n}", str(n)), offered_slots=offered)
                        assert (got.label, got.slot) == ("choose_slot", n), text
                continue
            got = classify(text, today=NOW.date())
            assert got.label == meaning.value, text
            if flavour == COST:
                assert got.barrier is Barrier.cost, text


def test_the_replies_patients_send_in_conversations_are_understood_as_meant():
    seen: Counter[Meaning] = Counter()
    for p in population(1500):
        for inbound, reply in conversation(p):
            offered = offer_choices(inbound.body) if inbound.is_slot_offer else 0
            got = classify(reply.body, offered_slots=offered, today=NOW.date())
            assert got.label == reply.meaning.value, reply.body
            seen[reply.meaning] += 1
    assert set(seen) == set(Meaning)  # every kind of answer occurs in a practice this size


# --- what patients answer ---------------------------------------------------------------------


def test_patients_answer_the_messengers_outreach_but_never_its_confirmations_or_acks():
    for template in default_library():
        assert heard(fill(template.body, VALUES, template.language)) is Heard.outreach
    prompt = patient(1, Persona.prompt)
    for reply, words in TEXTS.items():
        for lang in words:
            body = system(reply, lang)
            kind = heard(body)
            if reply in SLOT_OFFERS:
                assert (kind, offer_choices(body)) == (Heard.slot_offer, 3)
                continue
            assert kind is not Heard.outreach, reply
            for k in range(30):
                inbound = Inbound(f"m-{reply}-{lang}-{k}", body, NOW)
                assert (
                    answer(prompt, Journey.follow_up, inbound, ConversationState(), seed=k) is None
                )
    for template in freed_slot_words.templates():
        body = fill(template.body, {**VALUES, "slot_time": "Wed Mar 4, 9:00 AM"}, "en")
        assert (heard(body), offer_choices(body)) == (Heard.slot_offer, 1), body
    assert heard(system(SystemReply.stop_confirmation, "es")) is Heard.opt_out_confirmation
    assert heard(system(SystemReply.booking_requested)) is Heard.booking_confirmation
    assert heard("Your appointment on Tue Mar 3 is confirmed.") is Heard.booking_confirmation


def test_a_slot_offer_is_answered_with_a_digit_among_the_times_offered():
    picks: Counter[int] = Counter()
    for n in range(400):
        p = patient(n, Persona.prompt, lang="es" if n % 2 else "en")
        body = "Lakeside has: 1) Tue Mar 3, 9:00 AM; 2) Wed Mar 4, 2:00 PM. Reply 1, 2 or 3."
        inbound = Inbound(f"offer-{n}", body, NOW, is_slot_offer=True, offer_choices=2)
        reply = answer(p, Journey.follow_up, inbound, ConversationState(), seed=SEED)
        if reply is None:
            continue
        assert reply.meaning is Meaning.choose_slot
        digits = [c for c in reply.body if c.isdigit()]
        assert len(digits) == 1 and digits[0] in "12"
        picks[int(digits[0])] += 1
        assert 5 <= reply.after_minutes <= 300
    assert 340 < sum(picks.values()) < 400  # most answer, some let the offer lapse
    assert picks[1] > picks[2] > 0  # the earliest time is the favourite


def test_an_offer_of_two_times_is_never_answered_with_three_whatever_the_caller_says():
    body = system(SystemReply.slot_offer).replace("; 3) Wed Mar 4, 2:00 PM", "")
    for n in range(300):
        inbound = Inbound(f"offer-{n}", body, NOW, is_slot_offer=True, offer_choices=3)
        reply = answer(
            patient(n, Persona.prompt), Journey.follow_up, inbound, ConversationState(), seed=n
        )
        assert reply is None or "3" not in reply.body


def test_conversations_remember_each_patient_so_busy_ones_book_the_second_time_and_stop_holds():
    phones = Conversations(SEED)
    busy = [patient(n, Persona.busy, Journey.surveillance) for n in range(200)]
    first = [
        phones.answer(p, p.journey, Inbound(f"{p.patient_id}-1", outreach(1), NOW)) for p in busy
    ]
    second = [
        phones.answer(p, p.journey, Inbound(f"{p.patient_id}-2", outreach(2), NOW)) for p in busy
    ]
    pairs = [(a.meaning, b.meaning) for a, b in zip(first, second, strict=True) if a and b]
    assert len(pairs) > 50
    assert all(later is not Meaning.later for _first, later in pairs)
    assert sum(pair == (Meaning.later, Meaning.book) for pair in pairs) > 0.8 * len(pairs)
    done = [patient(n, Persona.done) for n in range(300)]
    for p in done:
        phones.answer(p, p.journey, Inbound(f"{p.patient_id}-1", outreach(1), NOW))
    stopped = [p for p in done if phones.states[p.patient_id].stopped]
    assert stopped
    for p in stopped:
        for k in range(2, 6):
            inbound = Inbound(f"{p.patient_id}-{k}", outreach(k % 4 + 1), NOW)
            assert phones.answer(p, p.journey, inbound) is None


def test_the_same_seed_gives_the_same_answers_whatever_the_order_of_asking():
    patients = list(population(300))
    messages = [Inbound(f"{p.patient_id}-m1", outreach(1, p.language), NOW) for p in patients]

    def ask(order: list[int], seed: int) -> dict[int, Reply | None]:
        return {
            i: answer(patients[i], patients[i].journey, messages[i], ConversationState(), seed=seed)
            for i in order
        }

    forward = ask(list(range(300)), SEED)
    assert forward == ask(list(reversed(range(300))), SEED)
    assert forward != ask(list(range(300)), SEED + 1)
    assert [list(conversation(p)) for p in patients[:60]] == [
        list(conversation(p)) for p in patients[:60]
    ]


def test_a_patient_who_said_stop_never_writes_again():
    stoppers = 0
    for p in population(1200):
        said_stop = False
        for _inbound, reply in conversation(p, steps=4):
            assert not said_stop, "a reply after STOP"
            said_stop = reply.meaning is Meaning.opt_out
        stoppers += said_stop
    assert stoppers > 10
    stopped = ConversationState(stopped=True)
    for k in range(50):
        inbound = Inbound(f"m-{k}", outreach(1 + k % 4), NOW)
        assert (
            answer(patient(k, Persona.prompt), Journey.question, inbound, stopped, seed=k) is None
        )


def test_silent_patients_never_answer_anything():
    for n in range(300):
        p = patient(n, Persona.silent, Journey.question)
        for body, is_offer in ((outreach(1), False), (system(SystemReply.slot_offer), True)):
            inbound = Inbound(f"m-{n}", body, NOW, is_slot_offer=is_offer, offer_choices=3)
            assert answer(p, Journey.question, inbound, ConversationState(), seed=n) is None


def reply_rate(persona: Persona, journey: Journey, count: int = 1500) -> float:
    answered = 0
    for n in range(count):
        inbound = Inbound(f"m-{n}", outreach(1), NOW)
        p = patient(n, persona, journey)
        answered += answer(p, journey, inbound, ConversationState(), seed=SEED) is not None
    return answered / count


@pytest.mark.parametrize(
    ("persona", "low", "high"),
    [
        (Persona.prompt, 0.75, 0.97),
        (Persona.anxious, 0.7, 0.95),
        (Persona.busy, 0.6, 0.85),
        (Persona.price_sensitive, 0.55, 0.8),
        (Persona.done, 0.5, 0.75),
        (Persona.silent, 0.0, 0.0),
    ],
)
def test_the_share_of_patients_answering_a_reminder_suits_their_persona(persona, low, high):
    assert low <= reply_rate(persona, Journey.canceller) <= high


def test_clinical_care_gets_more_answers_than_cosmetic_upkeep():
    for persona in (Persona.prompt, Persona.busy, Persona.done):
        cosmetic = reply_rate(persona, Journey.cosmetic, 800)
        follow_up = reply_rate(persona, Journey.follow_up, 800)
        assert follow_up > cosmetic + 0.15


def meanings(
    persona: Persona,
    count: int = 600,
    lang: str = "en",
    journey: Journey = Journey.surveillance,
) -> list[list[Meaning]]:
    return [
        [r.meaning for _i, r in conversation(patient(n, persona, journey, lang))]
        for n in range(count)
    ]


def test_busy_patients_ask_for_later_and_book_the_next_time():
    said = meanings(Persona.busy)
    laters = [m for m in said if m and m[0] is Meaning.later]
    assert len(laters) > 0.9 * len([m for m in said if m])
    booked_next = [m for m in laters if Meaning.book in m[1:]]
    assert all(m[1] is Meaning.book for m in booked_next)
    assert len(booked_next) > 0.5 * len(laters)


def test_price_sensitive_patients_ask_what_it_costs_and_some_then_book():
    said = meanings(Persona.price_sensitive)
    asked = [m for m in said if m and m[0] is Meaning.question]
    assert len(asked) > 0.6 * len([m for m in said if m])
    then_booked = sum(Meaning.book in m[1:] for m in asked)
    then_declined = sum(Meaning.decline in m[1:] for m in asked)
    assert then_booked > 0.2 * len(asked) and then_declined > 0


def red_flag_share(journey: Journey) -> tuple[float, float]:
    """(red flags, clinical questions) as shares of anxious patients' answers to reminders."""
    to_reminders = [
        m
        for convo in meanings(Persona.anxious, 1500, journey=journey)
        for m in convo
        if m is not Meaning.choose_slot
    ]
    share = Counter(to_reminders)
    total = len(to_reminders)
    return share[Meaning.red_flag] / total, share[Meaning.clinical_concern] / total


def test_anxious_patients_ask_clinical_questions_and_rarely_raise_a_red_flag():
    red_flags, questions = red_flag_share(Journey.cosmetic)
    assert questions > 0.4
    assert 0.01 < red_flags < 0.06  # about 3%


def test_patients_watching_a_lesion_raise_red_flags_more_often():
    red_flags, questions = red_flag_share(Journey.question)
    assert questions > 0.3
    assert 0.12 < red_flags < 0.3  # about 20%
    assert red_flags > 3 * red_flag_share(Journey.lapsed)[0]


def test_done_patients_say_no_longer_needed_decline_or_stop_and_never_book():
    said = Counter(m for convo in meanings(Persona.done) for m in convo)
    assert set(said) == {Meaning.no_longer_needed, Meaning.decline, Meaning.opt_out}


def test_a_few_percent_of_all_patients_say_stop():
    people = list(population(3000))
    stopped = sum(
        any(r.meaning is Meaning.opt_out for _i, r in conversation(p, steps=4)) for p in people
    )
    assert 0.01 <= stopped / len(people) <= 0.08


def test_spanish_speaking_patients_answer_in_spanish():
    spanish = {text for (_m, lang, _f), pool in PHRASES.items() if lang == "es" for text in pool}
    for convo in meanings(Persona.prompt, 50, lang="es"):
        assert convo
    replies = [
        r for n in range(50) for _i, r in conversation(patient(n, Persona.prompt, lang="es"))
    ]
    for reply in replies:
        assert reply.body in spanish or reply.meaning is Meaning.choose_slot


def test_answers_take_minutes_to_two_days_and_busy_patients_take_longest():
    def delays(persona: Persona) -> list[int]:
        return [r.after_minutes for n in range(300) for _i, r in conversation(patient(n, persona))]

    prompt, busy = delays(Persona.prompt), delays(Persona.busy)
    assert all(5 <= d <= 2880 for d in prompt + busy)
    assert median(prompt) < 60 < median(busy)
