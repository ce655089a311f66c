"""Every workflow's four steps, in English and Spanish, from real eligibilities.

Each chart goes through the segmenter's rules, the sequencer's state machine and the messenger's
default words (tests/messenger/words_chain.py). Every date the text states is the source's or
the due date the eligibility documented; the provider is the documented one (no other name);
the service is the documented one; a due date that has passed reads differently from one ahead.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from services.messenger.domain.templates import Rendered
from services.messenger.domain.words import Refused
from shared.events import Envelope
from shared.events.common import Purpose, ServiceLine
from shared.events.ehr import QuestionChannel, TreatmentPlanUpdated
from shared.events.eligibility import LeftReason, PatientBecameEligible, PatientLeftSegment
from shared.events.messages import BlockReason
from shared.events.outreach import SendStep
from tests.messenger.words_chain import (
    PROVIDERS,
    commands,
    dates_in,
    documented_facts,
    eligibility,
    formatted,
    other_providers,
    words,
)
from tests.segmenter.factory import Ehr, at

L = ServiceLine


def chart(name: str) -> tuple[list[Envelope[Any]], datetime]:
    """The EHR facts of one synthetic patient per scenario, and when the need falls due."""
    ehr = Ehr()
    if name == "surveillance_ahead":
        return [
            ehr.visit("v-0", at("2026-03-02"), L.skin_check),
            ehr.follow_up("f-1", "2026-03-02", L.skin_check, due_on="2026-09-01"),
        ], at("2026-08-18")
    if name == "surveillance_overdue":
        return [
            ehr.visit("v-0", at("2025-03-02"), L.skin_check),
            ehr.follow_up("f-1", "2025-03-02", L.skin_check, interval_days=365, recurring=True),
        ], at("2026-03-16")
    if name == "chronic":
        return [
            ehr.visit("v-0", at("2025-09-01"), L.psoriasis_eczema),
            ehr.follow_up(
                "f-1", "2025-09-01", L.psoriasis_eczema, interval_days=180, recurring=True
            ),
        ], at("2026-03-14")
    if name == "follow_up_visit":
        return [
            ehr.visit("v-0", at("2026-01-10"), L.general_dermatology),
            ehr.follow_up("f-1", "2026-01-10", L.general_dermatology, interval_days=60),
        ], at("2026-02-25")
    if name == "follow_up_portal":
        return [ehr.question("q-1", at("2026-03-03", 18), within=7)], at("2026-03-04")
    if name == "series":
        plan = ehr.plan("pl-1", L.laser, 5, 3, 35, "2026-01-20")
        medical = plan.payload.model_copy(update={"purpose": Purpose.care})
        return [ehr.event(TreatmentPlanUpdated.model_validate(medical.model_dump()))], at(
            "2026-03-03"
        )
    if name == "acne":
        return [
            ehr.visit("v-0", at("2026-01-05"), L.acne),
            ehr.follow_up("f-1", "2026-01-05", L.acne, due_on="2026-03-05"),
        ], at("2026-02-19")
    if name == "cosmetic":
        return [ehr.visit("v-1", at("2026-01-10"), L.neurotoxin)], at("2026-03-27")
    if name == "consult":
        return [
            ehr.visit("v-c", at("2026-02-01"), L.general_dermatology),
            ehr.recommended("r-1", "v-c", "2026-02-01", L.phototherapy, start_within_days=14),
        ], at("2026-02-15")
    if name == "cancellation":
        start = datetime.fromisoformat("2026-03-10T15:00:00+00:00")
        return [ehr.cancelled("a-1", start, L.acne, at("2026-03-03", 14), provider="dr-2")], at(
            "2026-03-03", 16
        )
    if name == "lapsed":
        return [
            ehr.visit("v-1", at("2024-05-01"), L.skin_check),
            ehr.visit("v-2", at("2024-09-09"), L.skin_check),
        ], at("2026-03-11")
    raise AssertionError(name)


SCENARIOS = {
    "surveillance_ahead": "skin_cancer_surveillance",
    "surveillance_overdue": "skin_cancer_surveillance",
    "chronic": "chronic_review",
    "follow_up_visit": "follow_up",
    "follow_up_portal": "follow_up",
    "series": "treatment_series",
    "acne": "acne_follow_up",
    "cosmetic": "cosmetic_maintenance",
    "consult": "consult_not_started",
    "cancellation": "cancellation_recovery",
    "lapsed": "lapsed_patient",
}
# What step 1 names as the source, per scenario (English, Spanish).
SOURCE_WORDS = {
    "surveillance_ahead": ("At your visit on ", "En su visita del "),
    "surveillance_overdue": ("Your care plan of ", "Su plan de cuidado del "),
    "chronic": ("Your care plan of ", "Su plan de cuidado del "),
    "follow_up_visit": ("At your visit on ", "En su visita del "),
    "follow_up_portal": ("When you wrote to us on ", "Cuando nos escribió el "),
    "series": ("in your treatment series", "Su serie de tratamiento"),
    "acne": ("At your visit on ", "En su visita del "),
    "cosmetic": ("Your last ", "Su visita anterior"),
    "consult": ("At your consultation on ", "En su consulta del "),
    "cancellation": ("was cancelled", "Se canceló su "),
    "lapsed": ("since your last visit", "desde su última visita"),
}
STEP_WORDS = {
    2: (("BOOK", "LATER and the month"), ("CITA", "MAS TARDE y el mes")),
    3: (("timing", "cost", "question", "no longer needed"), ("horario", "costo", "pregunta")),
    4: (("last", "LATER and a month", "NO"), ("último", "MAS TARDE y un mes", "NO")),
}


def run_scenario(name: str) -> tuple[PatientBecameEligible, list[tuple[datetime, SendStep]]]:
    events, due = chart(name)
    elig = eligibility(events, due)
    _, sends = commands(elig, due)
    return elig, sends


def check_words(elig: PatientBecameEligible, when: datetime, cmd: SendStep, language: str) -> str:
    out = words(cmd, language, when)
    assert isinstance(out, Rendered), out
    text = f"{out.subject or ''}\n{out.body}"
    today = when.date()
    facts = documented_facts(cmd, elig, language)
    stated = dates_in(text, language, today)
    assert set(stated) <= facts.dates, (stated, facts.dates, text)
    for name in other_providers(facts.provider):
        assert name not in text, text
    assert "{" not in text and "[[" not in text
    if cmd.step == 1:
        # A lapse names the last visit, not a service due.
        assert facts.service in text or cmd.workflow_key == "lapsed_patient"
        assert elig.documented is not None
        for day in facts.dates:
            assert formatted(day, language, today) in text, (day, text)
        if facts.provider:
            assert facts.provider in text
    return out.body


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_step_states_only_what_the_eligibility_documented(name: str, language: str) -> None:
    elig, sends = run_scenario(name)
    assert [cmd.step for _, cmd in sends] == [1, 2, 3, 4]
    assert {cmd.workflow_key for _, cmd in sends} == {SCENARIOS[name]}
    english = language == "en"
    for when, cmd in sends:
        body = check_words(elig, when, cmd, language)
        if cmd.step == 1:
            assert SOURCE_WORDS[name][0 if english else 1] in body
        else:
            for phrase in STEP_WORDS[cmd.step][0 if english else 1]:
                assert phrase in body or phrase.capitalize() in body, (phrase, body)


def test_a_due_date_ahead_and_one_passed_read_differently() -> None:
    _, ahead = run_scenario("surveillance_ahead")
    _, passed = run_scenario("surveillance_overdue")
    first_ahead, first_passed = ahead[0][1], passed[0][1]
    assert (first_ahead.overdue, first_passed.overdue) == (False, True)
    en_ahead = words(first_ahead, "en", ahead[0][0])
    en_passed = words(first_passed, "en", passed[0][0])
    es_ahead = words(first_ahead, "es", ahead[0][0])
    es_passed = words(first_passed, "es", passed[0][0])
    assert isinstance(en_ahead, Rendered) and isinstance(en_passed, Rendered)
    assert isinstance(es_ahead, Rendered) and isinstance(es_passed, Rendered)
    assert "It is due by September 1." in en_ahead.body
    assert "was due" not in en_ahead.body
    assert "It was due by March 2 and is not booked yet." in en_passed.body
    assert "La fecha prevista es el 1 de septiembre." in es_ahead.body
    assert "La fecha prevista era el 2 de marzo y aún no tiene cita." in es_passed.body
    # The plan was written last year: its date says so.
    assert "Your care plan of March 2, 2025 with Dr. Rivera" in en_passed.body


def test_a_portal_question_is_named_as_the_source_never_a_visit() -> None:
    elig, sends = run_scenario("follow_up_portal")
    assert elig.documented is not None and elig.documented.source.value == "portal_question"
    first = words(sends[0][1], "en", sends[0][0])
    assert isinstance(first, Rendered)
    assert "When you wrote to us on March 3, a clinician asked to see you" in first.body
    assert "visit on" not in first.body and "last visit" not in first.body


def test_the_sources_other_channels_are_named_as_they_happened() -> None:
    ehr = Ehr()
    phone = ehr.question("q-1", at("2026-03-03", 18), within=7)
    called = phone.payload.model_copy(update={"received_via": QuestionChannel.phone})
    elig = eligibility([ehr.event(called)], at("2026-03-04"))
    _, sends = commands(elig, at("2026-03-04"))
    first = words(sends[0][1], "es", sends[0][0])
    assert isinstance(first, Rendered)
    assert "Cuando nos llamó el 3 de marzo" in first.body


def test_a_medical_laser_series_is_care_and_needs_no_marketing_consent() -> None:
    elig, sends = run_scenario("series")
    assert elig.needs_marketing_consent is False
    assert {cmd.purpose for _, cmd in sends} == {Purpose.care}
    ehr = Ehr()
    undocumented = eligibility(
        [ehr.plan("pl-1", L.laser, 5, 3, 35, "2026-01-20")], at("2026-03-03")
    )
    assert undocumented.needs_marketing_consent is True  # the line's usual purpose


def test_the_cancellation_is_confirmed_with_its_date_service_and_provider() -> None:
    _, sends = run_scenario("cancellation")
    first = words(sends[0][1], "en", sends[0][0])
    assert isinstance(first, Rendered)
    assert first.body == (
        "Hi Ana, this is Lakeside Dermatology. Your skin care visit with Dr. Okafor on March 10 "
        "was cancelled. Would you like a new time with Dr. Okafor for the same visit? Reply BOOK "
        "for open times. Do you have a question? Just reply with it. Reply STOP to opt out."
    )
    spanish = words(sends[0][1], "es", sends[0][0])
    assert isinstance(spanish, Rendered)
    assert "Se canceló su cita de cuidado de la piel con Dr. Okafor del 10 de marzo." in (
        spanish.body
    )
    assert "¿Tiene alguna pregunta?" in spanish.body


def test_service_recovery_apologises_and_never_names_a_date_or_pushes_a_booking() -> None:
    events, due = chart("follow_up_visit")
    elig = eligibility(events, due)
    recovery = PatientLeftSegment(
        eligibility_id=elig.eligibility_id,
        segment=elig.segment,
        kind=elig.kind,
        service_line=elig.service_line,
        reason=LeftReason.service_recovery,
    )
    driver, _ = commands(elig, due, days=1)
    driver.feed(recovery)
    driver.advance(timedelta(days=30))
    sends = [(at_, c) for at_, c in driver.sends() if c.workflow_key == "service_recovery"]
    assert [c.step for _, c in sends] == [1, 2, 3, 4]
    for when, cmd in sends:
        for language in ("en", "es"):
            out = words(cmd, language, when)
            assert isinstance(out, Rendered), out
            assert dates_in(out.body, language, when.date()) == []
            assert "BOOK" not in out.body and "CITA" not in out.body
    first = words(sends[0][1], "en", sends[0][0])
    assert isinstance(first, Rendered) and "We are sorry" in first.body


def test_an_unknown_provider_leaves_the_words_about_them_out() -> None:
    _, sends = run_scenario("follow_up_visit")
    cmd = sends[0][1].model_copy(update={"provider_id": "dr-unknown"})
    out = words(cmd, "en", sends[0][0])
    assert isinstance(out, Rendered)
    assert "At your visit on January 10, a dermatology visit was recommended for you." in out.body
    assert " with ," not in out.body and "  " not in out.body
    assert set(PROVIDERS.values()).isdisjoint(out.body.split(", "))


def test_a_command_that_documents_nothing_is_refused_naming_the_missing_fact() -> None:
    _, sends = run_scenario("follow_up_visit")
    older = sends[0][1].model_copy(update={"documented": None, "overdue": None})
    refused = words(older, "en", sends[0][0])
    assert isinstance(refused, Refused)
    assert refused.reason is BlockReason.missing_fact
    assert "{reason}" in refused.detail
    # Steps that state no documented fact still go.
    second = sends[1][1].model_copy(update={"documented": None, "overdue": None})
    assert isinstance(words(second, "en", sends[1][0]), Rendered)


def test_the_step_commanded_after_the_due_date_says_it_has_passed() -> None:
    elig, sends = run_scenario("follow_up_visit")
    assert elig.documented is not None
    due = elig.documented.due_on
    assert due == date(2026, 3, 11)
    later = [cmd for when, cmd in sends if when.date() > due]
    assert later and all(cmd.overdue for cmd in later)
    earlier = [cmd for when, cmd in sends if when.date() <= due]
    assert earlier and not any(cmd.overdue for cmd in earlier)
