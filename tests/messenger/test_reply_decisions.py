"""What the messenger does with a reply that says several things, or that it is unsure of; the
one-line summary for people; the outside reader's second reading (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from services.messenger.domain.checks import ContactCard
from services.messenger.domain.classifier import classify
from services.messenger.domain.conversation import ConversationState, Decision, Task, decide
from services.messenger.domain.red_flags import RedFlag, Safety
from services.messenger.domain.second_reading import added, reading_from, request_body
from services.messenger.domain.summary import conversation_line, summarise
from services.messenger.domain.system_messages import Reply
from services.messenger.domain.understanding import Reading, Understanding, merge
from shared.events.common import Channel
from shared.events.escalations import CaseType, EscalationRaised, Severity
from shared.events.messages import Barrier, OptedOut, ReplyIntent, ReplyReceived

NOW = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
TODAY = date(2026, 3, 3)
ZONE = ZoneInfo("America/Chicago")
CARD = ContactCard("c1:p1", "Ana", "+15555550101", "ana@example.test", "en", "America/Chicago")
STATE = ConversationState("c1:p1", sequence_id="seq-1", last_outbound_message_id="m-1")


def decide_on(u: Understanding, body: str, channel: Channel = Channel.sms) -> Decision:
    return decide(
        STATE, CARD, u, text=body, reply_message_id="r-1", channel=channel, now=NOW, zone=ZONE
    )


def run(body: str, channel: Channel = Channel.sms) -> Decision:
    return decide_on(classify(body, today=TODAY), body, channel)


def cases(d: Decision) -> list[tuple[CaseType, Severity]]:
    return [(e.case_type, e.severity) for e in d.events if isinstance(e, EscalationRaised)]


def test_booking_and_a_red_flag_in_one_reply_books_and_pages() -> None:
    d = run("yes book me, also the biopsy site is oozing")
    assert cases(d) == [(CaseType.red_flag, Severity.urgent)]
    assert [a.reply for a in d.answers] == [Reply.safety]
    assert d.task is not None and d.task[0] is Task.offer_slots
    [received] = [e for e in d.events if isinstance(e, ReplyReceived)]
    assert received.intent is ReplyIntent.red_flag


def test_stop_and_a_red_flag_opts_out_and_pages_with_one_confirmation() -> None:
    d = run("STOP, and the spot is bleeding")
    assert cases(d) == [(CaseType.red_flag, Severity.urgent)]
    assert [a.reply for a in d.answers] == [Reply.stop_confirmation, Reply.safety]
    assert any(isinstance(e, OptedOut) for e in d.events)
    assert d.consent is not None and d.consent.channel is Channel.sms
    assert d.end_sequence == "seq-1" and d.task is None


def test_a_revocation_that_also_asks_something_says_how_to_get_it_answered() -> None:
    d = run("stop texting me. how much was my last visit?")
    assert [a.reply for a in d.answers] == [Reply.stop_confirmation_asked]
    plain = run("stop texting me")
    assert [a.reply for a in plain.answers] == [Reply.stop_confirmation]


def test_a_revocation_leaves_the_other_channel_as_it_was_unless_it_names_it() -> None:
    by_email = run("please stop emailing me", Channel.email)
    assert by_email.consent is not None and by_email.consent.channel is Channel.email
    both = run("stop texting and emailing me")
    assert both.consent is not None and both.consent.channel is None


def test_clinical_content_goes_to_a_person_while_the_booking_goes_ahead() -> None:
    d = run("BOOK. also is it normal that my lips are dry on accutane?")
    assert cases(d) == [(CaseType.clinical_question, Severity.high)]
    assert d.task is not None and d.task[0] is Task.offer_slots


def test_an_unsure_reading_goes_to_a_person_and_nothing_automatic_happens() -> None:
    unsure = Understanding(
        merge([Reading("model", intent=ReplyIntent.decline, intent_confidence=0.4)]), sure=False
    )
    d = decide_on(unsure, "hmm idk maybe not this time or maybe yes")
    assert cases(d) == [(CaseType.unclassified_reply, Severity.low)]
    assert d.task is None and d.answers == ()
    [received] = [e for e in d.events if isinstance(e, ReplyReceived)]
    assert received.intent is ReplyIntent.unknown


def test_a_sure_later_snoozes_to_the_date_asked_for() -> None:
    sure = Understanding(
        merge([Reading("model", intent=ReplyIntent.later, intent_confidence=0.97)]),
        sure=True,
        snooze_until=date(2026, 4, 1),
    )
    d = decide_on(sure, "after march please")
    [received] = [e for e in d.events if isinstance(e, ReplyReceived)]
    assert received.intent is ReplyIntent.later and received.snooze_until == date(2026, 4, 1)


# --- summaries -------------------------------------------------------------------------------


def test_a_summary_quotes_the_patients_barrier_time_and_question() -> None:
    text = "Can't afford it right now. Maybe after the holidays? do you take medicaid?"
    u = classify(text, today=TODAY)
    s = summarise(text, u, today=TODAY)
    assert s.time_words == "Maybe after the holidays?"
    assert s.question is not None and s.question.endswith("?")
    if u.barrier is Barrier.cost:
        assert s.barrier_words == "Can't afford it right now."
    line = s.line()
    assert line.startswith(s.reading) and '"Maybe after the holidays?"' in line


def test_a_summary_masks_contact_details_and_cuts_long_quotes() -> None:
    text = "call me at 555-123-4567 or ana@example.com? " + "really " * 30 + "?"
    s = summarise(text, classify(text), today=TODAY)
    assert "555-123" not in s.line() and "ana@example.com" not in s.line()
    assert all(len(q) <= 70 for q in (s.question or "",))


def test_a_red_flag_summary_names_the_kind_in_fixed_words() -> None:
    u = classify("my lip is really swollen after the filler")
    assert summarise("my lip is really swollen after the filler", u).reading.startswith(
        "red flag: swelling"
    )


def test_a_conversation_line_keeps_the_latest_of_each_part() -> None:
    first = summarise("too expensive right now", classify("too expensive right now"))
    later = summarise("maybe in may?", classify("maybe in may?", today=TODAY), today=TODAY)
    line = conversation_line([first, later])
    assert line is not None and later.reading in line


# --- the outside reader's second reading ------------------------------------------------------


def answer(content: str) -> dict[str, object]:
    return {"choices": [{"message": {"role": "assistant", "content": content}}]}


def test_the_outside_reading_is_parsed_from_a_chat_completion() -> None:
    content = (
        '```json\n{"consent": "none", "safety": "red_flag", "intent": "book", '
        '"barrier": "none", "confidence": 0.8}\n```'
    )
    found = reading_from(answer(content))
    assert found is not None
    reading, suggestion = found
    assert reading.safety is Safety.red_flag and suggestion is ReplyIntent.book
    assert reading_from(answer("I think they want to book")) is None
    assert reading_from({"error": "overloaded"}) is None
    body = request_body("hi", model="m", offered_slots=3, opted_out=False)
    assert body["messages"][-1]["content"].endswith("Reply: hi")


def test_the_outside_reading_may_add_a_red_flag_or_revocation_but_never_remove_one() -> None:
    calm = classify("thanks, see you then")
    worse = Reading("reader", safety=Safety.red_flag, red_flags=frozenset({RedFlag.other}))
    extra = added(calm, worse)
    assert extra is not None and extra.safety is Safety.red_flag
    urgent = classify("the stitches came open and it's bleeding")
    assert added(urgent, Reading("reader", safety=Safety.none)) is None
    out = classify("stop texting me")
    assert added(out, Reading("reader")) is None
    assert added(calm, Reading("reader", revoke=True)) is not None
    d = decide_on(replace(extra), "thanks, see you then")
    assert cases(d) == [(CaseType.red_flag, Severity.urgent)]
