"""The default library, the renderer and every linter rule."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.messenger.domain.library import WORKFLOWS, default_library
from services.messenger.domain.linter import lint
from services.messenger.domain.system_messages import TEXTS, Reply, as_template, text_of
from services.messenger.domain.templates import (
    VARIABLES,
    Template,
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
    "due_month": "March 2026",
    "booking_link": "https://book.example.org",
}


def sms(body: str, **kw: object) -> Template:
    return Template("follow_up", 2, Channel.sms, Tone.supportive, "en", body, **kw)  # type: ignore[arg-type]


def rules(t: Template) -> set[str]:
    return {issue.rule for issue in lint(t)}


def test_library_covers_every_workflow_step_channel_and_language() -> None:
    keys = {(t.workflow_key, t.step, t.channel, t.language) for t in LIBRARY}
    expected = {
        (w, s, c, lang)
        for w in WORKFLOW_KEYS
        for s in (1, 2, 3, 4)
        for c in (Channel.sms, Channel.email)
        for lang in ("en", "es")
    }
    assert keys == expected
    assert set(WORKFLOWS) == set(WORKFLOW_KEYS)


@pytest.mark.parametrize("template", LIBRARY, ids=lambda t: f"{t.key}-{t.channel}-{t.language}")
def test_every_default_template_passes_the_linter_and_renders(template: Template) -> None:
    assert lint(template) == []
    rendered = render(template, VALUES)
    assert "{" not in rendered.body and "}" not in rendered.body
    assert "Lakeside Dermatology" in rendered.body or "Lakeside Dermatology" in (
        rendered.subject or ""
    )
    if template.channel is Channel.email:
        assert rendered.subject
    if template.channel is Channel.sms:
        assert len(worst_case(template.body)) <= 320


def test_cosmetic_maintenance_is_marketing_and_the_rest_are_care() -> None:
    purposes = {t.workflow_key: t.purpose for t in LIBRARY}
    assert purposes.pop("cosmetic_maintenance") is Purpose.marketing
    assert set(purposes.values()) == {Purpose.care}


def test_the_walking_skeleton_words_are_kept_for_cancellation_recovery() -> None:
    [first] = [
        t
        for t in LIBRARY
        if t.key == "cancellation_recovery.1" and t.channel is Channel.sms and t.language == "en"
    ]
    body = render(first, VALUES).body
    assert body.startswith("Hi Ana, this is Lakeside Dermatology. Your skin check was cancelled.")
    assert body.endswith("Reply STOP to opt out.")


def test_missing_or_too_long_values_fall_back_to_neutral_words() -> None:
    t = sms("Hi {first_name}, {provider_name} asked to see you. {practice_name}")
    body = render(t, {"first_name": None, "provider_name": "x" * 31, "practice_name": "P"}).body
    assert body == "Hi there, our team asked to see you. P"
    spanish = replace(t, language="es", body="Hola {first_name}, le escribe {practice_name}.")
    assert render(spanish, {"practice_name": "P"}).body == "Hola, le escribe P."


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
        "due_month",
        "booking_link",
    }


def test_the_documented_due_month_fills_recall_templates_in_each_language() -> None:
    from datetime import date

    from services.messenger.practices import Practice
    from services.messenger.sending import template_values
    from tests.messenger.conftest import send_step

    [en, es] = [
        t for t in LIBRARY
        if t.key == "skin_cancer_surveillance.1" and t.channel is Channel.sms
    ]  # fmt: skip
    due = send_step(workflow="skin_cancer_surveillance").model_copy(
        update={"due_on": date(2026, 3, 9)}
    )
    practice = Practice("Lakeside", "+15555550100")
    assert (
        "is due in March 2026." in render(en, template_values(due, None, practice, None, "en")).body
    )
    spanish = render(es, template_values(due, None, practice, None, "es")).body
    assert "corresponde en marzo de 2026." in spanish
    undated = send_step(workflow="skin_cancer_surveillance")
    assert (
        "is due in the coming weeks."
        in render(en, template_values(undated, None, practice, None, "en")).body
    )
