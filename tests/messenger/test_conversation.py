"""What the messenger does about a reply (pure), the rewriter rule and Twilio signatures."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.messenger.domain.booking import slot_list
from services.messenger.domain.checks import ContactCard
from services.messenger.domain.classifier import classify
from services.messenger.domain.conversation import (
    ConversationState,
    Decision,
    OfferedSlot,
    Task,
    decide,
)
from services.messenger.domain.library import default_library
from services.messenger.domain.rewriter import accept
from services.messenger.domain.system_messages import Reply
from services.messenger.domain.templates import render
from services.messenger.providers.twilio import (
    compute_signature,
    status_callback_outcome,
    validate_signature,
)
from shared.events.common import Channel
from shared.events.escalations import CaseType, EscalationRaised, Severity
from shared.events.messages import (
    FailureReason,
    OptedIn,
    OptedOut,
    RecordedVia,
    ReplyIntent,
    ReplyReceived,
    SnoozeRequested,
)

NOW = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
ZONE = ZoneInfo("America/Chicago")
CARD = ContactCard("c1:p1", "Ana", "+15555550101", None, "en", "America/Chicago")
STATE = ConversationState("c1:p1", sequence_id="seq-1", last_outbound_message_id="m-1")


def run(body: str, card: ContactCard = CARD, state: ConversationState = STATE) -> Decision:
    understood = classify(
        body,
        offered_slots=len(state.live_offer(NOW)),
        opted_out=card.opted_out(Channel.sms),
        today=NOW.astimezone(ZONE).date(),
    )
    return decide(
        state,
        card,
        understood,
        text=body,
        reply_message_id="r-1",
        channel=Channel.sms,
        now=NOW,
        zone=ZONE,
    )


def replies(d: Decision) -> list[Reply]:
    return [a.reply for a in d.answers]


def of_type(d: Decision, kind: type) -> list[object]:
    return [e for e in d.events if isinstance(e, kind)]


def test_stop_opts_out_with_exactly_one_confirmation() -> None:
    first = run("STOP")
    [event] = first.events
    assert isinstance(event, OptedOut) and event.recorded_via is RecordedVia.reply_keyword
    assert event.source_message_id == "r-1" and event.channel is Channel.sms
    assert replies(first) == [Reply.stop_confirmation]
    assert first.consent is not None and first.consent.opted_out
    again = run("STOP", card=replace(CARD, opted_out_sms=True))
    assert (again.events, again.answers, again.consent) == ((), (), None)


def test_stopall_opts_out_of_every_channel() -> None:
    [event] = run("STOPALL").events
    assert isinstance(event, OptedOut) and event.channel is None


def test_start_opts_back_in_only_when_opted_out() -> None:
    d = run("START", card=replace(CARD, opted_out_sms=True))
    assert isinstance(d.events[0], OptedIn) and replies(d) == [Reply.start_confirmation]
    subscribed = run("UNSTOP")
    assert not of_type(subscribed, OptedIn) and subscribed.answers == ()


def test_help_answers_even_after_an_opt_out() -> None:
    d = run("HELP", card=replace(CARD, opted_out_sms=True))
    assert replies(d) == [Reply.help]
    assert isinstance(d.events[0], ReplyReceived) and d.events[0].intent is ReplyIntent.help


def test_free_text_revocation_is_recorded_as_classified() -> None:
    [event] = run("please stop texting me").events
    assert isinstance(event, OptedOut) and event.recorded_via is RecordedVia.reply_classified


def test_red_flag_pages_at_once_and_answers_with_safety_not_advice() -> None:
    d = run("my biopsy site is bleeding and won't stop")
    [case] = of_type(d, EscalationRaised)
    assert isinstance(case, EscalationRaised)
    assert case.case_type is CaseType.red_flag and case.severity is Severity.urgent
    assert case.source_message_id == "r-1" and "bleeding" in case.summary
    assert replies(d) == [Reply.safety]
    [received] = of_type(d, ReplyReceived)
    assert isinstance(received, ReplyReceived) and received.intent is ReplyIntent.red_flag
    assert d.task is None


def test_red_flag_from_an_opted_out_patient_still_gets_the_safety_answer() -> None:
    d = run(
        "stop texting me, my lip is swollen after the filler",
        card=replace(CARD, opted_out_sms=True),
    )
    assert replies(d) == [Reply.safety]
    assert of_type(d, EscalationRaised)


def test_clinical_questions_go_to_a_person_and_are_never_answered() -> None:
    d = run("Should I keep using the cream twice a day?")
    [case] = of_type(d, EscalationRaised)
    assert isinstance(case, EscalationRaised) and case.case_type is CaseType.clinical_question
    assert replies(d) == [Reply.clinical_ack]


def test_book_schedules_a_slot_search() -> None:
    d = run("BOOK")
    assert d.task is not None and d.task[0] is Task.offer_slots
    [received] = of_type(d, ReplyReceived)
    assert isinstance(received, ReplyReceived) and received.sequence_id == "seq-1"
    assert received.in_reply_to_message_id == "m-1"


def test_choosing_an_offered_slot_books_it() -> None:
    offer = tuple(
        OfferedSlot(f"slot-{i}", NOW + timedelta(days=i), "dr-1", "loc-1") for i in (1, 2, 3)
    )
    state = replace(STATE, offer=offer, offer_expires_at=NOW + timedelta(hours=1))
    d = run("2", state=state)
    assert d.task is not None and d.task[0] is Task.book_slot
    assert d.task[1]["slot_id"] == "slot-2" and d.clear_offer
    [received] = of_type(d, ReplyReceived)
    assert isinstance(received, ReplyReceived) and received.chosen_slot_id == "slot-2"
    expired = replace(state, offer_expires_at=NOW - timedelta(minutes=1))
    assert (
        run("2", state=expired).task is None
        or run("2", state=expired).task[0] is not Task.book_slot
    )  # type: ignore[index]


def test_later_snoozes_the_sequence_until_the_asked_date_or_a_default() -> None:
    d = run("remind me in 2 weeks")
    [snooze] = of_type(d, SnoozeRequested)
    assert isinstance(snooze, SnoozeRequested) and snooze.until == date(2026, 3, 17)
    [default] = of_type(run("later"), SnoozeRequested)
    assert isinstance(default, SnoozeRequested) and default.until == date(2026, 4, 2)


def test_wrong_number_marks_the_number_and_apologises() -> None:
    d = run("wrong number")
    assert d.wrong_number and replies(d) == [Reply.wrong_number_ack]


def test_a_poor_experience_raises_a_service_recovery_case() -> None:
    d = run("waited 2 hours last time, no way")
    cases = [e for e in d.events if isinstance(e, EscalationRaised)]
    assert [c.case_type for c in cases] == [CaseType.poor_experience]


def test_events_carry_references_never_the_words() -> None:
    body = "my mole changed color and it's itchy"
    for event in run(body).events:
        assert "mole" not in event.model_dump_json().lower().replace("new or changing mole", "")


def test_slot_lists_read_naturally_in_both_languages() -> None:
    slot = (OfferedSlot("s1", datetime(2026, 3, 4, 15, 0, tzinfo=UTC)),)
    assert slot_list(slot, ZONE, "en") == "1) Wed Mar 4, 9:00 AM"
    assert slot_list(slot, ZONE, "es") == "1) mié 4 mar, 09:00"


# --- the rewriter may only rephrase -------------------------------------------------------------

TEMPLATE = next(
    t
    for t in default_library()
    if t.key == "follow_up.1" and t.language == "en" and t.channel is Channel.sms
)
VALUES = {
    "first_name": "Ana",
    "practice_name": "Lakeside",
    "practice_phone": "+15555550100",
    "provider_name": "Dr. Rivera",
    "service_name": "skin check",
    "reason": "At your visit on May 9 with Dr. Rivera, a skin check was recommended for you.",
}
APPROVED = render(TEMPLATE, VALUES).body


def test_a_faithful_rephrasing_is_accepted() -> None:
    candidate = (
        "Hello Ana, Lakeside here. At your visit on May 9 with Dr. Rivera, a skin check was "
        "recommended for you. Reply BOOK for open times or call +15555550100. Reply STOP to opt "
        "out."
    )
    assert accept(TEMPLATE, APPROVED, candidate, VALUES.values()) == (candidate, True)


@pytest.mark.parametrize(
    "candidate",
    [
        "Hi Ana, Lakeside here. Please book your skin check. Reply BOOK. Reply STOP to opt out.",
        "Hi Ana, Lakeside. Dr. Rivera needs you back urgently for a skin check. Reply BOOK or call "
        "+15555550100. Reply STOP to opt out.",
        "Hi Ana, Lakeside. Dr. Rivera wants to recheck your melanoma (skin check). Reply BOOK or "
        "call +15555550100. Reply STOP to opt out.",
        "Hi Ana, Lakeside. Dr. Rivera would like a skin check. Reply BOOK or call +15555550100.",
    ],
    ids=["drops-a-fact", "adds-urgency", "adds-a-condition", "drops-the-opt-out"],
)
def test_a_rewrite_that_loses_a_fact_or_breaks_a_rule_falls_back_to_the_approved_text(
    candidate: str,
) -> None:
    assert accept(TEMPLATE, APPROVED, candidate, VALUES.values()) == (APPROVED, False)


# --- Twilio ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vectors(realdata_dir: Path) -> dict[str, object]:
    return dict(
        json.loads((realdata_dir / "twilio" / "request_validator_vectors.json").read_text())
    )


def test_twilio_signature_vectors_validate(vectors: dict) -> None:  # type: ignore[type-arg]
    token, params = vectors["auth_token"], list(vectors["params"].items())
    assert compute_signature(token, vectors["url"], params) == vectors["expected_signature"]
    assert validate_signature(token, vectors["url"], params, vectors["expected_signature"])
    for variant in vectors["variants"]:
        assert (
            validate_signature(token, variant["url"], params, variant["signature"])
            is variant["valid"]
        )
    dup = vectors["duplicate_keys"]
    pairs = [tuple(p) for p in dup["params_ordered_pairs"]]
    assert validate_signature(token, dup["url"], pairs, dup["expected_signature"])
    body = vectors["json_body"]
    assert validate_signature(token, body["url"], body["body"], body["expected_signature"])


def test_twilio_signatures_refuse_tampering(vectors: dict) -> None:  # type: ignore[type-arg]
    token, params = vectors["auth_token"], list(vectors["params"].items())
    good = vectors["expected_signature"]
    assert not validate_signature(token, vectors["url"], [*params, ("Body", "x")], good)
    assert not validate_signature(token, vectors["url"] + "&x=1", params, good)
    assert not validate_signature("other", vectors["url"], params, good)
    assert not validate_signature(token, vectors["url"], params, None)
    body = vectors["json_body"]
    assert not validate_signature(
        token, body["url"], body["body"] + " ", body["expected_signature"]
    )


def test_twilio_status_values_map_to_delivery_outcomes(realdata_dir: Path) -> None:
    shapes = json.loads((realdata_dir / "twilio" / "messaging_webhook_shapes.json").read_text())
    outcomes = {s: status_callback_outcome(s, None)[0] for s in shapes["message_status_values"]}
    assert outcomes["delivered"] == "delivered" and outcomes["read"] == "delivered"
    assert outcomes["undelivered"] == "failed" and outcomes["failed"] == "failed"
    assert outcomes["queued"] == "pending" and outcomes["sent"] == "pending"
    assert status_callback_outcome("undelivered", "30006") == (
        "failed",
        FailureReason.invalid_address,
        True,
    )
