"""Properties of reply understanding and what follows from it (pure, generated replies):

- no reply containing a revocation in a revoking sense ever leaves consent granted;
- a reply that books and names a red flag produces both effects;
- no layer can turn a red flag (or a revocation) into a non-urgent outcome: the merge only adds,
  and whatever the other readings say, a red flag pages and gets the safety answer.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.messenger.domain.checks import ContactCard
from services.messenger.domain.classifier import classify
from services.messenger.domain.conversation import ConversationState, Decision, Task, decide
from services.messenger.domain.keywords import Keyword
from services.messenger.domain.red_flags import RedFlag, Safety
from services.messenger.domain.system_messages import Reply
from services.messenger.domain.understanding import Reading, Understanding, combine, merge
from shared.events.common import Channel
from shared.events.escalations import CaseType, EscalationRaised, Severity
from shared.events.messages import Barrier, OptedOut, ReplyIntent

NOW = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
ZONE = ZoneInfo("America/Chicago")
CARD = ContactCard("c1:p1", "Ana", "+15555550101", "ana@example.test", "en", "America/Chicago")
STATE = ConversationState("c1:p1", sequence_id="seq-1", last_outbound_message_id="m-1")
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REVOKING = [
    "STOP", "stop", "Stop texting me", "unsubscribe", "UNSUB", "lose my number",
    "no more messages please", "take me off your list", "leave me alone", "quit texting me",
    "opt me out", "remove me from your list", "don't text me again", "END", "cancel",
    "please stop sending these", "PARAR", "BAJA", "ya no me escriban", "no me manden mensajes",
    "bórrenme de la lista", "dejen de escribirme", "stop these messages",
]  # fmt: skip
OTHER = [
    "", "thanks", "how much is the visit?", "I'm busy this month", "my insurance changed",
    "the spot on my arm is itchy", "who is this", "maybe next month", "ok", "👍",
    "my daughter handles my appointments", "la crema me ayudó", "¿cuánto cuesta?",
    "I already saw another dermatologist", "wrong number", "book me for march",
]  # fmt: skip
BOOKING = [
    "yes book me", "BOOK", "I'd like to schedule", "please book me an appointment",
    "sí, quiero una cita", "can I come in this week?", "book me please", "yes please schedule me",
]  # fmt: skip
URGENT = [
    "the biopsy site is oozing pus", "my lip is really swollen after the filler",
    "it's bleeding and won't stop", "my eyelid is drooping and my vision is blurry",
    "I've been having dark thoughts on accutane", "hard to breathe since the injection",
    "the stitches came open", "la herida está sangrando mucho", "tengo fiebre y la herida supura",
    "the mole is growing and turned black",
]  # fmt: skip


def run(body: str, card: ContactCard = CARD, offered: int = 0) -> tuple[Understanding, Decision]:
    u = classify(body, offered_slots=offered, opted_out=card.opted_out(Channel.sms), today=None)
    d = decide(
        STATE, card, u, text=body, reply_message_id="r-1", channel=Channel.sms, now=NOW, zone=ZONE
    )
    return u, d


def shout(text: str, how: int) -> str:
    return [text, text.upper(), text.lower(), text.capitalize()][how % 4]


def pages_urgently(d: Decision) -> bool:
    return any(
        isinstance(e, EscalationRaised)
        and e.case_type is CaseType.red_flag
        and e.severity is Severity.urgent
        for e in d.events
    ) and any(a.reply is Reply.safety for a in d.answers)


@FAST
@given(
    st.sampled_from(REVOKING),
    st.sampled_from(OTHER),
    st.sampled_from(OTHER),
    st.integers(0, 3),
    st.sampled_from([". ", "! ", "\n", " - ", ", "]),
)
def test_no_reply_that_revokes_leaves_consent_granted(
    revoking: str, before: str, after: str, how: int, joint: str
) -> None:
    body = joint.join(p for p in (before, shout(revoking, how), after) if p)
    u, d = run(body)
    assert u.revocation, body
    assert d.consent is not None and d.consent.opted_out, body
    assert d.consent.channel in (Channel.sms, None), body
    assert any(isinstance(e, OptedOut) for e in d.events), body
    assert d.end_sequence == "seq-1" and d.task is None, body
    assert sum(a.reply.name.startswith("stop_confirmation") for a in d.answers) == 1, body


@FAST
@given(st.sampled_from(REVOKING), st.sampled_from(OTHER))
def test_a_revocation_from_a_patient_already_out_changes_nothing_and_is_not_confirmed_again(
    revoking: str, other: str
) -> None:
    _, d = run(f"{revoking}. {other}", card=replace(CARD, opted_out_sms=True))
    assert d.consent is None
    assert not any(a.reply.name.startswith("stop_confirmation") for a in d.answers)


@FAST
@given(
    st.sampled_from(BOOKING),
    st.sampled_from(URGENT),
    st.booleans(),
    st.sampled_from([". ", ", also ", " but ", "! ", ". btw "]),
)
def test_a_booking_with_a_red_flag_books_and_pages(
    booking: str, urgent: str, urgent_first: bool, joint: str
) -> None:
    body = joint.join([urgent, booking] if urgent_first else [booking, urgent])
    u, d = run(body)
    assert u.safety is Safety.red_flag, body
    assert pages_urgently(d), body
    assert d.task is not None and d.task[0] is Task.offer_slots, body


readings = st.builds(
    Reading,
    source=st.sampled_from(["rules", "model", "reader", "slot", "keyword"]),
    revoke=st.booleans(),
    every_channel=st.booleans(),
    opt_in=st.booleans(),
    help=st.booleans(),
    keyword=st.none() | st.sampled_from(list(Keyword)),
    safety=st.sampled_from(list(Safety)),
    red_flags=st.frozensets(st.sampled_from(list(RedFlag)), max_size=3),
    intent=st.none() | st.sampled_from([i for i in ReplyIntent if i.value != "red_flag"]),
    intent_confidence=st.floats(0, 1),
    slot=st.none() | st.integers(1, 3),
    barrier=st.none() | st.sampled_from(list(Barrier)),
)


@FAST
@given(st.lists(readings, min_size=1, max_size=5), st.randoms())
def test_the_merge_only_adds_whatever_the_order(layers: list[Reading], rnd: object) -> None:
    merged = merge(layers)
    assert merged.safety == max(r.safety for r in layers)
    assert merged.revoke == any(r.revoke for r in layers)
    assert merged.help == any(r.help for r in layers)
    assert merged.red_flags == frozenset().union(*(r.red_flags for r in layers))
    shuffled = list(layers)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    again = merge(shuffled)
    assert (again.safety, again.revoke, again.red_flags, again.intent) == (
        merged.safety,
        merged.revoke,
        merged.red_flags,
        merged.intent,
    )
    for extra in layers:
        assert combine(merged, extra).safety >= merged.safety


@FAST
@given(st.lists(readings, max_size=4), st.booleans(), st.booleans(), st.sampled_from(URGENT))
def test_no_other_reading_turns_a_red_flag_into_a_non_urgent_outcome(
    others: list[Reading], sure: bool, opted_out: bool, urgent: str
) -> None:
    calm = [replace(r, safety=Safety.none, red_flags=frozenset()) for r in others]
    u = classify(urgent, extra=calm)
    assert u.safety is Safety.red_flag and u.label == "red_flag"
    forced = Understanding(merge([Reading("rules", safety=Safety.red_flag), *others]), sure=sure)
    card = replace(CARD, opted_out_sms=opted_out)
    d = decide(
        STATE, card, forced, text=urgent, reply_message_id="r-1", channel=Channel.sms, now=NOW,
        zone=ZONE,
    )  # fmt: skip
    assert pages_urgently(d)
