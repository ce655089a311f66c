"""The default library, the renderer and every linter rule."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.messenger.domain.library import WORKFLOWS, default_library
from services.messenger.domain.linter import lint, lint_final
from services.messenger.domain.reasons import longest_reason
from services.messenger.domain.system_messages import TEXTS, Reply, as_template, text_of
from services.messenger.domain.templates import (
    VARIABLES,
    MissingFact,
    Template,
    fill,
    render,
    select_template,
    sms_segments,
    worst_case,
)
from shared.events.common import Channel, ClinicalUrgency, Purpose
from shared.events.outreach import Tone

LIBRARY = default_library()
WORKFLOW_KEYS = [
    "skin_cancer_surveillance",
    "chronic_review",
    "follow_up",
    "treatment_series",
    "acne_follow_up",
    "cosmetic_maintenance",
    "consult_not_started",
    "cancellation_recovery",
    "lapsed_patient",
    "service_recovery",
]
VALUES = {
    "first_name": "Ana",
    "practice_name": "Lakeside Dermatology",
    "practice_phone": "+15555550100",
    "provider_name": "Dr. Rivera",
    "service_name": "skin check",
    "source_date": "March 2",
    "due_date": "September 1",
    "due_month": "September 2026",
    "booking_link": "https://book.example.org",
    "reason": "At your visit on March 2 with Dr. Rivera, a skin check was recommended for you.",
}


def sms(body: str, **kw: object) -> Template:
    return Template("follow_up", 2, Channel.sms, Tone.supportive, "en", body, **kw)  # type: ignore[arg-type]


def rules(t: Template) -> set[str]:
    return {issue.rule for issue in lint(t)}


def test_library_covers_every_workflow_step_channel_language_and_tone() -> None:
    keys = {(t.workflow_key, t.step, t.channel, t.language, t.tone) for t in LIBRARY}
    expected = {
        (w, s, c, lang, tone)
        for w in WORKFLOW_KEYS
        for s in (1, 2, 3, 4)
        for c in (Channel.sms, Channel.email)
        for lang in ("en", "es")
        for tone in (Tone if w != "service_recovery" else [Tone.supportive])
    }
    assert keys == expected
    assert set(WORKFLOWS) == set(WORKFLOW_KEYS)


def test_tone_changes_the_words_not_only_the_greeting() -> None:
    def body(tone: Tone, step: int) -> str:
        [t] = [
            t
            for t in LIBRARY
            if (t.key, t.channel, t.language, t.tone)
            == (f"follow_up.{step}", Channel.sms, "en", tone)
        ]
        return t.body.split(" ", 1)[1]  # after the greeting word

    for step in (1, 2, 3, 4):
        assert len({body(tone, step) for tone in Tone}) == 3, step


def test_steps_two_to_four_are_written_for_each_workflow() -> None:
    def step(workflow: str, n: int) -> str:
        [t] = [
            t
            for t in LIBRARY
            if (t.key, t.channel, t.language, t.tone)
            == (f"{workflow}.{n}", Channel.sms, "en", WORKFLOWS[workflow].tone)
        ]
        return render(t, VALUES).body

    booking = [w for w in WORKFLOW_KEYS if w != "service_recovery"]
    for n in (2, 3, 4):
        assert len({step(w, n) for w in booking}) == len(booking), n


@pytest.mark.parametrize(
    "template", LIBRARY, ids=lambda t: f"{t.key}-{t.channel}-{t.language}-{t.tone}"
)
def test_every_default_template_passes_the_linter_and_renders(template: Template) -> None:
    assert lint(template) == []
    rendered = render(template, VALUES)
    assert lint_final(template, rendered) == []
    assert "{" not in rendered.body and "}" not in rendered.body
    assert "Lakeside Dermatology" in rendered.body or "Lakeside Dermatology" in (
        rendered.subject or ""
    )
    if template.channel is Channel.email:
        assert rendered.subject
    if template.channel is Channel.sms:
        longest = worst_case(template.body, {"reason": longest_reason(template.workflow_key)})
        assert len(longest) <= (459 if template.step == 1 else 320)


def test_cosmetic_maintenance_is_marketing_and_the_rest_are_care() -> None:
    purposes = {t.workflow_key: t.purpose for t in LIBRARY}
    assert purposes.pop("cosmetic_maintenance") is Purpose.marketing
    assert set(purposes.values()) == {Purpose.care}


def test_the_playbook_steps_offer_booking_or_later_ask_the_barrier_and_close() -> None:
    for workflow in WORKFLOW_KEYS:
        if workflow == "service_recovery":
            continue
        for language, (later, choices, close) in {
            "en": ("LATER and the month", "cost", "LATER and a month"),
            "es": ("MAS TARDE y el mes", "costo", "MAS TARDE y un mes"),
        }.items():
            sms = {
                t.step: render(t, VALUES).body
                for t in LIBRARY
                if t.workflow_key == workflow
                and t.language == language
                and t.channel is Channel.sms
                and t.tone is WORKFLOWS[workflow].tone
            }
            assert later in sms[2] and "book.example.org" in sms[2]
            assert choices in sms[3]
            assert close in sms[4] and "NO" in sms[4]


def test_missing_facts_are_refused_by_name_never_filled_in() -> None:
    t = sms("Hi {first_name}, your visit is due by {due_date}. {practice_name}")
    with pytest.raises(MissingFact) as missing:
        render(t, {"first_name": "Ana", "practice_name": "P"})
    assert missing.value.variable == "due_date"
    with pytest.raises(MissingFact, match="too long"):
        render(t, {"first_name": "A" * 21, "due_date": "May 1", "practice_name": "P"})


def test_an_optional_section_is_left_out_whole_when_its_fact_is_unknown() -> None:
    t = sms("Hi[[ {first_name}]], your visit[[ with {provider_name}]] is due. {practice_name}")
    assert render(t, {"practice_name": "P"}).body == "Hi, your visit is due. P"
    full = render(t, {"practice_name": "P", "first_name": "Ana", "provider_name": "Dr. Lee"})
    assert full.body == "Hi Ana, your visit with Dr. Lee is due. P"
    assert rules(sms("Hi[[ {first_name}, no end")) == {"variable"}


def test_conversation_replies_keep_neutral_words_for_unknown_values() -> None:
    text = "Hi {first_name}, {provider_name} asked to see you. {practice_name}"
    values = {"first_name": None, "provider_name": "x" * 31, "practice_name": "P"}
    assert fill(text, values, "en") == "Hi there, our team asked to see you. P"
    spanish = fill("Hola {first_name}, le escribe {practice_name}.", {"practice_name": "P"}, "es")
    assert spanish == "Hola, le escribe P."


def test_the_final_text_is_linted_with_its_values() -> None:
    t = sms("Hi {first_name}, your {service_name} is ready. {practice_name}")
    clean = render(t, {"first_name": "Ana", "service_name": "skin check", "practice_name": "P"})
    assert lint_final(t, clean) == []
    dirty = render(t, {"first_name": "Ana", "service_name": "melanoma", "practice_name": "P"})
    assert {i.rule for i in lint_final(t, dirty)} == {"condition_word"}
    urgent = render(t, {"first_name": "Ana", "service_name": "visit", "practice_name": "ASAP"})
    assert {i.rule for i in lint_final(t, urgent)} == {"urgency"}
    named = render(
        t, {"first_name": "Ana", "service_name": "visit", "practice_name": "Skin Cancer Center"}
    )
    assert lint_final(t, named, names=["Skin Cancer Center"]) == []  # the practice's own name
    long = t.body.replace("{practice_name}", "P" * 300)
    filled = render(replace(t, body=long), {"first_name": "Ana", "service_name": "visit"})
    assert {i.rule for i in lint_final(t, filled)} == {"length"}


def test_unknown_variables_and_bad_braces_are_refused_with_the_allowed_list() -> None:
    issues = lint(sms("Hi {first_name}, your {last_name} review is due."))
    assert [i.rule for i in issues] == ["variable"]
    assert "{last_name}" in issues[0].message and "first_name" in issues[0].message
    assert rules(sms("Hi {first_name!r}")) == {"variable"}
    assert rules(sms("Hi {first_name")) == {"variable"}


@pytest.mark.parametrize(
    "body",
    [
        "Time for your melanoma check.",
        "Your eczema review is due.",
        "Your biopsy follow-up is due.",
        "Su revisión de cáncer de piel.",
        "Tiene una lesión que revisar.",
    ],
)
def test_condition_words_in_an_sms_are_refused(body: str) -> None:
    issues = lint(sms(body))
    assert [i.rule for i in issues] == ["condition_word"]
    assert "service_name" in issues[0].message


def test_condition_words_in_an_email_subject_are_refused() -> None:
    t = Template(
        "follow_up",
        2,
        Channel.email,
        Tone.supportive,
        "en",
        "Hi {first_name}, please book. To stop these e-mails, reply STOP.",
        "Your acne visit",
    )
    assert rules(t) == {"condition_word"}


def test_urgency_beyond_the_documented_urgency_is_refused() -> None:
    assert rules(sms("Please book right away.")) == {"urgency"}
    assert rules(sms("Please book as soon as possible.")) == {"urgency"}
    assert rules(sms("Please book as soon as possible.", urgency=ClinicalUrgency.soon)) == set()
    assert rules(sms("Llame de inmediato.", urgency=ClinicalUrgency.soon)) == {"urgency"}
    assert rules(sms("Please call us immediately.", urgency=ClinicalUrgency.urgent)) == set()


def test_offers_are_refused_outside_marketing_templates() -> None:
    assert rules(sms("Book now and get 20% off.")) == {"offer"}
    assert rules(sms("Only $99 this month.")) == {"offer"}
    assert rules(sms("Tenemos un descuento.")) == {"offer"}
    assert rules(sms("Feel free to call us.")) == set()


def test_a_marketing_offer_must_stand_apart_from_clinical_sentences() -> None:
    mixed = sms("Your skin check is due and comes with 20% off.", purpose=Purpose.marketing)
    apart = sms(
        "Your treatment may be due. Members save 20% this month.", purpose=Purpose.marketing
    )
    assert rules(mixed) == {"offer"}
    assert rules(apart) == set()


def test_a_first_contact_without_an_opt_out_line_is_refused() -> None:
    first = replace(sms("Hi {first_name}, reply BOOK to book."), step=1)
    assert rules(first) == {"opt_out"}
    assert rules(replace(first, body=first.body + " Reply STOP to opt out.")) == set()
    email = Template(
        "follow_up", 1, Channel.email, Tone.supportive, "en", "Hi {first_name}, book here.", "Hi"
    )
    assert rules(email) == {"opt_out"}


@pytest.mark.parametrize(
    "body",
    [
        "Reply CANCEL to cancel your visit.",
        "Text END when you are done.",
        "Reply YES to confirm.",
        "Responda CANCEL para cancelar.",
        "Reply STOP to confirm your time.",
    ],
)
def test_templates_never_ask_for_carrier_keywords(body: str) -> None:
    issues = lint(sms(body))
    assert "carrier_keyword" in {i.rule for i in issues}


def test_sms_over_the_length_limit_with_longest_values_is_refused() -> None:
    body = "Hi {first_name}, " + "we look forward to seeing you again. " * 8
    issues = lint(sms(body))
    assert [i.rule for i in issues] == ["length"]
    assert "limit is 320" in issues[0].message
    assert lint(sms(body), sms_max_chars=400) == []


def test_segments_count_gsm_and_unicode_text() -> None:
    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2
    assert sms_segments("á" * 70) == 1
    assert sms_segments("á" * 71) == 2


def test_every_conversation_reply_passes_the_linter_in_both_languages() -> None:
    for reply in Reply:
        for language in ("en", "es"):
            template = as_template(reply, language)
            assert lint(template, system=True) == [], (reply, language)


def test_help_answers_with_practice_contact_and_rates() -> None:
    for language in ("en", "es"):
        text = text_of(
            Reply.help, language, {"practice_name": "Lakeside", "practice_phone": "+1555"}
        )
        assert "Lakeside" in text and "+1555" in text and "Msg & data rates may apply" in text
    assert set(TEXTS) == set(Reply)


def test_selection_prefers_language_then_tone_and_never_exceeds_urgency() -> None:
    en = sms("A", urgency=ClinicalUrgency.routine)
    es = replace(en, language="es", body="B")
    urgent_es = replace(es, urgency=ClinicalUrgency.urgent, body="C")
    friendly_es = replace(es, tone=Tone.friendly, body="D")
    pick = select_template(
        [en, es, urgent_es, friendly_es],
        language="es",
        tone=Tone.supportive,
        urgency=ClinicalUrgency.soon,
    )
    assert pick is es
    assert (
        select_template([en], language="es", tone=Tone.clinical, urgency=ClinicalUrgency.routine)
        is en
    )
    assert (
        select_template(
            [urgent_es], language="es", tone=Tone.supportive, urgency=ClinicalUrgency.routine
        )
        is None
    )


def test_variables_whitelist_is_the_documented_one() -> None:
    assert set(VARIABLES) == {
        "first_name",
        "practice_name",
        "practice_phone",
        "provider_name",
        "service_name",
        "source_date",
        "due_date",
        "due_month",
        "booking_link",
        "reason",
    }


def test_a_first_contact_may_take_three_segments_the_others_two() -> None:
    body = "Hi {first_name}, " + "we look forward to seeing you again. " * 10
    first = replace(sms(body + " Reply STOP to opt out."), step=1)
    assert [i.rule for i in lint(first)] == []
    assert [i.rule for i in lint(sms(body))] == ["length"]
