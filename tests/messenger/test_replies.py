"""Reply understanding: carrier keywords, the classifier, snooze dates and the labelled corpus."""

from __future__ import annotations

from datetime import date

import pytest

from services.messenger.domain.classifier import RedFlag, classify
from services.messenger.domain.dates import snooze_date
from services.messenger.domain.keywords import Keyword, keyword
from services.messenger.replies.evaluate import evaluate, load, report
from shared.events.messages import Barrier, ReplyIntent

TODAY = date(2026, 3, 2)  # a Monday


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("STOP", Keyword.opt_out),
        ("stop", Keyword.opt_out),
        (" Stop. ", Keyword.opt_out),
        ("STOPALL", Keyword.opt_out_all),
        ("stop all", Keyword.opt_out_all),
        ("UNSUBSCRIBE", Keyword.opt_out),
        ("CANCEL", Keyword.opt_out),
        ("END", Keyword.opt_out),
        ("QUIT", Keyword.opt_out),
        ("quit 🛑", Keyword.opt_out),
        ("PARAR", Keyword.opt_out),
        ("START", Keyword.opt_in),
        ("UNSTOP", Keyword.opt_in),
        ("YES", Keyword.opt_in),
        ("HELP", Keyword.help),
        ("ayuda", Keyword.help),
        ("please stop texting me", None),
        ("cancel my appointment", None),
        ("yes please", None),
    ],
)
def test_carrier_keywords_are_whole_messages(body: str, expected: Keyword | None) -> None:
    assert keyword(body) is expected


def test_free_text_revocation_is_an_opt_out() -> None:
    for body in ("please stop texting me", "no me manden más mensajes", "take me off your list"):
        understood = classify(body)
        assert understood.revocation and understood.label == "opt_out", body


def test_yes_opts_in_only_a_patient_who_opted_out() -> None:
    assert classify("YES", opted_out=True).keyword is Keyword.opt_in
    assert classify("YES", opted_out=False).intent is ReplyIntent.book


def test_red_flags_win_over_everything_else_in_the_reply() -> None:
    understood = classify("stop texting me. also my mole has been bleeding")
    assert understood.intent is ReplyIntent.red_flag
    assert understood.revocation
    assert RedFlag.bleeding in understood.red_flags
    assert classify("Yes book me, but the stitches are bleeding").intent is ReplyIntent.red_flag


def test_negated_symptoms_go_to_a_person_but_are_not_red_flags() -> None:
    understood = classify("The bleeding stopped, should I change the bandage?")
    assert understood.intent is ReplyIntent.clinical_concern
    assert classify("won't stop bleeding").intent is ReplyIntent.red_flag


def test_slot_choice_needs_an_open_offer() -> None:
    assert classify("2", offered_slots=3).slot == 2
    assert classify("the second one", offered_slots=3).slot == 2
    assert classify("la tercera opción", offered_slots=3).slot == 3
    assert classify("2", offered_slots=0).intent is not ReplyIntent.choose_slot
    assert classify("4", offered_slots=3).intent is not ReplyIntent.choose_slot


def test_later_carries_the_time_asked_for() -> None:
    understood = classify("busy with work, try me in 2 weeks", today=TODAY)
    assert understood.intent is ReplyIntent.later
    assert understood.snooze_until == date(2026, 3, 16)
    assert understood.barrier is Barrier.timing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in 2 weeks", date(2026, 3, 16)),
        ("in a couple of weeks", date(2026, 3, 16)),
        ("next month", date(2026, 4, 2)),
        ("el mes que viene", date(2026, 4, 2)),
        ("en dos semanas", date(2026, 3, 16)),
        ("after march", date(2026, 4, 1)),
        ("in january", date(2027, 1, 1)),
        ("en enero", date(2027, 1, 1)),
        ("after the holidays", date(2027, 1, 5)),
        ("on the 15th", date(2026, 3, 15)),
        ("in the fall", date(2026, 9, 22)),
        ("i may come", None),
        ("happy holidays", None),
    ],
)
def test_snooze_dates(text: str, expected: date | None) -> None:
    assert snooze_date(text, TODAY) == expected


def test_barriers_are_recognised() -> None:
    assert classify("no, too expensive").barrier is Barrier.cost
    assert classify("the staff was rude, no thanks").barrier is Barrier.poor_experience
    assert classify("still breaking out with the cream").barrier is Barrier.unresolved_concern
    assert classify("not sure it's necessary").barrier is Barrier.uncertainty


def test_corpus_is_large_bilingual_and_labelled_with_every_intent() -> None:
    examples = load()
    assert len(examples) >= 300
    assert sum(e.lang == "es" for e in examples) >= 100
    labels = {e.intent for e in examples}
    assert labels >= {i.value for i in ReplyIntent} - {"choose_slot"} | {"opt_out", "opt_in"}
    assert any(any(ord(c) > 0x2000 for c in e.text) for e in examples)  # emoji


def test_red_flag_recall_is_total_on_the_corpus_and_every_intent_is_measured() -> None:
    intents, barriers, accuracy = evaluate(load())
    by_label = {s.label: s for s in intents}
    assert by_label["red_flag"].recall == 1.0
    assert by_label["opt_out"].recall == 1.0
    assert accuracy >= 0.95
    assert all(s.precision >= 0.85 and s.recall >= 0.85 for s in intents), intents
    assert {s.label for s in barriers} == {b.value for b in Barrier}
    text = report(load())
    assert "red_flag" in text and "precision" in text
