"""The freed-slot ranker, pure: who is offered a freed time, in what order, on which channel."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.messenger.domain import freed_slot_words as words
from services.messenger.domain.booking import slot_time
from services.messenger.domain.checks import ContactCard
from services.messenger.domain.freed_slots import (
    Candidate,
    FreedSlot,
    SkipReason,
    Source,
    offer_id_for,
    order,
    rank,
)
from services.messenger.domain.linter import lint, lint_final
from services.messenger.domain.system_messages import Reply, as_template, text_of
from services.messenger.domain.templates import MissingFact, Rendered, render
from shared.events.common import Channel, ServiceLine
from shared.outreach_policy import DEFAULT_POLICY, OutreachPolicy

# 15:00 UTC is 10:00 in New York: inside the default allowed hours.
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
ZONE = "America/New_York"


def slot(**kw: object) -> FreedSlot:
    values: dict[str, object] = {
        "offer_id": offer_id_for("c1", "appt-1"),
        "clinic_id": "c1",
        "slot_id": "slot-1",
        "start": NOW + timedelta(days=1),
        "service_line": ServiceLine.skin_check,
        "provider_id": "dr-1",
        "location_id": "loc-1",
        "freed_by": "c1:canceller",
    }
    values.update(kw)
    return FreedSlot(**values)  # type: ignore[arg-type]


def card(key: str, **kw: object) -> ContactCard:
    values: dict[str, object] = {
        "patient_key": key,
        "given_name": None,
        "phone": "+15555550100",
        "email": None,
        "language": "en",
        "time_zone": ZONE,
    }
    values.update(kw)
    return ContactCard(**values)  # type: ignore[arg-type]


def waiting(key: str, minutes_ago: int = 60, **kw: object) -> Candidate:
    return Candidate(
        key, Source.waitlist, card(key, **kw), since=NOW - timedelta(minutes=minutes_ago)
    )


def member(key: str, due_in_days: int | None, **kw: object) -> Candidate:
    due = NOW.date() + timedelta(days=due_in_days) if due_in_days is not None else None
    return Candidate(key, Source.segment, card(key, **kw), due_on=due)


def test_the_waitlist_comes_first_then_segment_members_by_due_date() -> None:
    picks, _ = rank(
        slot(),
        [
            member("c1:due-later", 30),
            member("c1:no-date", None),
            member("c1:due-soon", 3),
            waiting("c1:asked-second", 10),
            waiting("c1:asked-first", 600),
        ],
        policy=DEFAULT_POLICY,
        now=NOW,
        batch_size=5,
    )
    assert [p.patient_key for p in picks] == [
        "c1:asked-first",
        "c1:asked-second",
        "c1:due-soon",
        "c1:due-later",
        "c1:no-date",
    ]
    assert [p.source for p in picks[:3]] == [Source.waitlist, Source.waitlist, Source.segment]


def test_a_patient_on_the_waitlist_and_in_a_segment_is_offered_once_as_waitlisted() -> None:
    picks, _ = rank(slot(), [member("c1:a", 1), waiting("c1:a")], policy=DEFAULT_POLICY, now=NOW)
    assert [(p.patient_key, p.source) for p in picks] == [("c1:a", Source.waitlist)]


def test_who_is_passed_over_and_why() -> None:
    picks, skipped = rank(
        slot(),
        [
            waiting("c1:out", opted_out_sms=True),
            waiting("c1:canceller"),
            waiting("c1:gone", deceased=True),
            waiting("c1:wrong", wrong_number_phone="+15555550100"),
            Candidate("c1:case", Source.waitlist, card("c1:case"), escalation_open=True),
            Candidate("c1:busy", Source.waitlist, card("c1:busy"), recent_sends=(NOW,)),
            Candidate("c1:choosing", Source.waitlist, card("c1:choosing"), offer_open=True),
            Candidate("c1:nocard", Source.segment, None),
            member("c1:already", 2),
        ],
        policy=DEFAULT_POLICY,
        now=NOW,
        already_offered=frozenset({"c1:already"}),
    )
    assert picks == []
    assert skipped == {
        "c1:out": SkipReason.opted_out,
        "c1:canceller": SkipReason.freed_it,
        "c1:gone": SkipReason.deceased,
        "c1:wrong": SkipReason.wrong_number,
        "c1:case": SkipReason.escalation_open,
        "c1:busy": SkipReason.frequency_cap,
        "c1:choosing": SkipReason.offer_open,
        "c1:nocard": SkipReason.no_contact,
        "c1:already": SkipReason.already_offered,
    }


def test_a_patient_opted_out_of_texts_is_offered_by_e_mail_when_they_have_one() -> None:
    [pick], _ = rank(
        slot(), [waiting("c1:a", opted_out_sms=True, email="a@example.org")],
        policy=DEFAULT_POLICY, now=NOW,
    )  # fmt: skip
    assert pick.channel is Channel.email


def test_a_cosmetic_slot_needs_marketing_consent_on_the_channel() -> None:
    filler = slot(service_line=ServiceLine.filler)
    picks, skipped = rank(filler, [waiting("c1:a")], policy=DEFAULT_POLICY, now=NOW)
    assert picks == [] and skipped == {"c1:a": SkipReason.no_consent}
    picks, _ = rank(filler, [waiting("c1:a", marketing_sms=True)], policy=DEFAULT_POLICY, now=NOW)
    assert [p.patient_key for p in picks] == ["c1:a"]


def test_nobody_is_offered_in_quiet_hours_or_a_time_that_has_begun() -> None:
    night = NOW.replace(hour=4)  # 23:00 in New York
    picks, skipped = rank(slot(), [waiting("c1:a")], policy=DEFAULT_POLICY, now=night)
    assert picks == [] and skipped == {"c1:a": SkipReason.quiet_hours}
    started = slot(start=NOW - timedelta(minutes=5))
    assert rank(started, [waiting("c1:a")], policy=DEFAULT_POLICY, now=NOW) == ([], {})


def test_the_clinic_policy_sets_the_hours_and_caps() -> None:
    early = OutreachPolicy(allowed_from=datetime(2026, 1, 1, 11).time(), per_day=2)
    picks, skipped = rank(slot(), [waiting("c1:a")], policy=early, now=NOW)  # 10:00 local
    assert picks == [] and skipped["c1:a"] is SkipReason.quiet_hours
    busy = Candidate(
        "c1:b", Source.waitlist, card("c1:b"), recent_sends=(NOW - timedelta(hours=1),)
    )
    picks, _ = rank(slot(), [busy], policy=OutreachPolicy(per_day=2), now=NOW)
    assert [p.patient_key for p in picks] == ["c1:b"]


def test_the_offer_states_the_true_reason_in_both_languages_and_passes_the_linter() -> None:
    values: dict[str, str | None] = {
        "practice_name": "Lakeside Skin",
        "practice_phone": "555-0100",
        "provider_name": "Dr. Okafor",
        "service_name": "skin check",
        "slot_time": slot_time(NOW, ZoneInfo(ZONE), "en"),
    }
    library = {(t.channel, t.language): t for t in words.templates()}
    assert set(library) == {(c, lang) for c in Channel for lang in ("en", "es")}
    en = render(library[(Channel.sms, "en")], values).body
    assert en.startswith("Lakeside Skin: an earlier time opened with Dr. Okafor on Wed Mar 4")
    es_values = {**values, "service_name": "revisión de piel"}
    es = render(library[(Channel.sms, "es")], es_values).body
    assert "se liberó un horario más pronto con Dr. Okafor el" in es
    unnamed = render(library[(Channel.sms, "en")], {**values, "provider_name": None}).body
    assert "an earlier time opened on Wed Mar 4" in unnamed
    # A fact the words state is never filled in with a stand-in.
    with pytest.raises(MissingFact):
        render(library[(Channel.sms, "en")], {**values, "slot_time": None})
    names = ("Lakeside Skin", "Dr. Okafor")
    for template in library.values():
        assert lint(template) == [], template
        assert lint_final(template, render(template, values), names=names) == []
    for language in ("en", "es"):
        gone = Rendered(text_of(Reply.freed_slot_gone, language, values))
        assert lint_final(as_template(Reply.freed_slot_gone, language), gone, names=names) == []


def test_the_linter_refuses_a_clinic_version_with_a_diagnosis_or_a_stand_in_variable() -> None:
    sms = next(t for t in words.templates() if t.channel is Channel.sms and t.language == "en")
    worse = replace(sms, body=sms.body.replace("your {service_name}", "your melanoma check"))
    assert {i.rule for i in lint(worse)} == {"condition_word"}
    odd = replace(sms, body=sms.body + " {slot_list}")
    assert {i.rule for i in lint(odd)} == {"variable"}
    # Only the freed-slot workflow may state a time; a step template may not.
    step = replace(sms, workflow_key="follow_up")
    assert {i.rule for i in lint(step)} == {"variable"}


# --- properties --------------------------------------------------------------------------------

flags = st.fixed_dictionaries(
    {
        "opted_out_sms": st.booleans(),
        "opted_out_email": st.booleans(),
        "marketing_sms": st.booleans(),
        "marketing_email": st.booleans(),
        "email": st.sampled_from([None, "x@example.org"]),
        "phone": st.sampled_from([None, "+15555550100"]),
        "deceased": st.booleans(),
        "time_zone": st.sampled_from([ZONE, "Asia/Tokyo", "Europe/Madrid"]),
    }
)
candidates = st.lists(
    st.tuples(
        st.integers(0, 30),
        st.sampled_from([Source.waitlist, Source.segment]),
        st.integers(-30, 60),
        st.booleans(),
        flags,
    ),
    max_size=25,
)


def build(raw: list[tuple[int, Source, int, bool, dict[str, object]]]) -> list[Candidate]:
    out = []
    cards: dict[str, ContactCard] = {}
    for n, source, days, marketing, f in raw:
        key = f"c1:p{n}"
        # One patient has one card, whether waitlisted, in a segment or both.
        out.append(
            Candidate(
                key,
                source,
                cards.setdefault(key, card(key, **f)),
                since=NOW - timedelta(minutes=n + 1),
                due_on=date.fromordinal(NOW.date().toordinal() + days),
                marketing=marketing,
            )
        )
    return out


@settings(max_examples=200, deadline=None)
@given(
    raw=candidates,
    batch=st.integers(0, 6),
    line=st.sampled_from([ServiceLine.skin_check, ServiceLine.neurotoxin]),
    hour=st.integers(0, 23),
)
def test_the_ranker_keeps_every_promise(
    raw: list[tuple[int, Source, int, bool, dict[str, object]]],
    batch: int,
    line: ServiceLine,
    hour: int,
) -> None:
    people = build(raw)
    now = NOW.replace(hour=hour)
    freed = slot(service_line=line, start=now + timedelta(days=2))
    picks, skipped = rank(freed, people, policy=DEFAULT_POLICY, now=now, batch_size=batch)
    by_key = {c.patient_key: c.card for c in people}
    chosen = {c.patient_key: c for c in order(people)}  # each patient's better place
    assert len(picks) <= batch
    assert len({p.patient_key for p in picks}) == len(picks)
    for pick in picks:
        c = by_key[pick.patient_key]
        assert c is not None and not c.deceased
        # Never an opted-out patient on the channel used; never marketing without consent.
        assert not c.opted_out(pick.channel)
        if line.is_cosmetic or chosen[pick.patient_key].marketing:
            assert c.marketing(pick.channel)
        assert c.address(pick.channel)
        assert pick.patient_key not in skipped
    # Waitlist before segment: no segment pick precedes a waitlist pick, and no segment member
    # is offered while a waitlisted patient who could be offered was passed over for them.
    sources = [p.source for p in picks]
    assert sources == sorted(sources, key=lambda s: s is Source.segment)
    if Source.segment in sources:
        waitlisted = {c.patient_key for c in people if c.source is Source.waitlist}
        assert waitlisted <= {p.patient_key for p in picks} | set(skipped)
