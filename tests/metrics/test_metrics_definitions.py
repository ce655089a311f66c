"""Every figure's definition, on hand-made event histories (pure: no database, no broker)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.metrics.domain.attribution import Derived, Episode, derive
from services.metrics.domain.history import RECORDED, PatientHistory, record
from shared.events import Envelope
from shared.events.common import Segment, ServiceLine
from shared.events.messages import Barrier, ReplyIntent
from shared.events.outreach import Arm
from tests.metrics.story import Story

WINDOW = timedelta(days=30)
DAY = 24.0


def history_of(events: list[Envelope[Any]], story: Story) -> PatientHistory:
    history = PatientHistory(clinic_id=story.clinic_id, patient_key=story.patient_key)
    for event in events:
        if event.type in RECORDED:
            history = record(history, event)
    return history


def derived(story: Story) -> Derived:
    return derive(history_of(story.events, story), WINDOW)


def episode(story: Story) -> Episode:
    [only] = derived(story).episodes
    return only


def messaged_story() -> tuple[Story, str]:
    story = Story("clinic-def")
    eligibility = story.eligible(0)
    sequence = story.started(eligibility, 1)
    story.sent(sequence, 2)
    return story, sequence


def test_a_patient_who_booked_before_the_first_message_is_not_attributed() -> None:
    story = Story("clinic-def")
    eligibility = story.eligible(0)
    sequence = story.started(eligibility, 1)
    appointment = story.booked(1.5)  # booked on their own, before outreach went out
    story.sent(sequence, 2)
    story.visit(appointment, 80)

    e = episode(story)
    assert e.first_sent_at == story.at(2)
    assert e.outcome.bookings == 0
    assert e.outcome.completed_visits == 0
    assert e.outcome.revenue_cents == 0


def test_a_booking_for_another_service_is_not_a_rebooking() -> None:
    story, _ = messaged_story()
    appointment = story.booked(5, line=ServiceLine.laser)
    story.visit(appointment, 80)

    assert episode(story).outcome.bookings == 0


def test_a_lapsed_patient_is_rebooked_by_a_booking_for_any_service() -> None:
    story = Story("clinic-def")
    eligibility = story.eligible(0, Segment.lapsed_patient, ServiceLine.general_dermatology)
    sequence = story.started(
        eligibility, 1, segment=Segment.lapsed_patient, line=ServiceLine.general_dermatology
    )
    story.sent(sequence, 2)
    story.visit(story.booked(5, line=ServiceLine.neurotoxin), 80)

    e = episode(story)
    assert (e.outcome.bookings, e.outcome.completed_visits) == (1, 1)


def test_a_click_is_recorded_beside_the_funnel_and_is_never_a_rebooking() -> None:
    story, sequence = messaged_story()
    story.clicked(sequence, 1, 3)
    story.clicked(sequence, 1, 2.5)  # the same link again, recorded out of order

    e = episode(story)
    assert e.clicked_at == story.at(2.5)
    assert (e.outcome.bookings, e.outcome.completed_visits) == (0, 0)


def test_an_episode_without_a_sequence_is_counted_from_its_eligibility() -> None:
    story = Story("clinic-def")
    story.eligible(0)  # held by a pilot, or before any outreach: the usual process
    story.visit(story.booked(30), 100)

    e = episode(story)
    assert e.sequence_id is None and e.outcome.bookings == 0
    assert (e.assigned.bookings, e.assigned.completed_visits) == (1, 1)


def test_a_no_show_booking_is_rebooked_but_not_completed() -> None:
    story, _ = messaged_story()
    appointment = story.booked(5)
    story.no_show(appointment, 77)

    e = episode(story)
    assert e.outcome.bookings == 1
    assert e.outcome.first_booked_at == story.at(5)
    assert e.outcome.completed_visits == 0


def test_a_cancelled_rebooking_is_rebooked_but_not_completed() -> None:
    story, _ = messaged_story()
    story.cancelled(story.booked(5), 30)

    e = episode(story)
    assert (e.outcome.bookings, e.outcome.completed_visits) == (1, 0)


def test_a_rebooking_fulfilled_as_a_visit_is_completed_and_its_charges_are_recovered() -> None:
    story, _ = messaged_story()
    appointment = story.booked(5)
    story.kept(appointment, 77)
    story.visit(appointment, 78, cents=18_500)

    e = episode(story)
    assert (e.outcome.bookings, e.outcome.completed_visits) == (1, 1)
    assert e.outcome.revenue_cents == 18_500


def test_an_arrival_without_posted_charges_is_completed_with_no_revenue_yet() -> None:
    story, _ = messaged_story()
    story.kept(story.booked(5), 77)

    e = episode(story)
    assert e.outcome.completed_visits == 1
    assert e.outcome.revenue_cents == 0


def test_charges_posted_later_replace_the_visit_s_first_version_whatever_the_order() -> None:
    story, _ = messaged_story()
    appointment = story.booked(5)
    visit = story.visit(appointment, 78, cents=0, source_hours=78)
    story.visit(appointment, 78, cents=21_000, visit_id=visit, source_hours=90)

    assert episode(story).outcome.revenue_cents == 21_000
    story.events.reverse()
    assert episode(story).outcome.revenue_cents == 21_000


def test_a_booking_after_the_attribution_window_is_not_a_rebooking() -> None:
    story, _ = messaged_story()
    story.booked(2 + 30 * DAY + 1)

    assert episode(story).outcome.bookings == 0


def test_a_booking_on_the_window_s_last_moment_is_a_rebooking() -> None:
    story, _ = messaged_story()
    story.booked(2 + 30 * DAY)

    assert episode(story).outcome.bookings == 1


def test_reached_needs_a_delivery_receipt_not_only_a_send() -> None:
    story = Story("clinic-def")
    sequence = story.started(story.eligible(0), 1)
    story.sent(sequence, 2, delivered_after=None)

    e = episode(story)
    assert e.messages_sent == 1
    assert e.first_delivered_at is None


def test_a_reply_counts_for_its_sequence_and_an_opt_out_counts_apart() -> None:
    story, sequence = messaged_story()
    story.reply(sequence, 3, ReplyIntent.later, Barrier.timing)
    story.opt_out(4)

    d = derived(story)
    [e] = d.episodes
    assert e.replied is True
    assert e.opted_out is True
    [reply] = d.replies
    assert (reply.intent, reply.barrier, reply.eligibility_id) == (
        "later",
        "timing",
        e.eligibility_id,
    )
    [opt_out] = d.opt_outs
    assert opt_out.eligibility_id == e.eligibility_id


def test_an_opt_out_alone_is_not_a_reply() -> None:
    story, _ = messaged_story()
    story.opt_out(4)

    e = episode(story)
    assert (e.replied, e.opted_out) == (False, True)


def test_a_reply_matched_only_by_the_message_it_answers_counts_for_that_sequence() -> None:
    story = Story("clinic-def")
    sequence = story.started(story.eligible(0), 1)
    message = story.sent(sequence, 2)
    story.reply(None, 3, in_reply_to=message)

    assert episode(story).replied is True


def test_a_booking_that_fits_two_episodes_counts_once_for_the_last_touch() -> None:
    story = Story("clinic-def")
    first = story.eligible(0, Segment.follow_up_not_booked)
    story.sent(story.started(first, 1, segment=Segment.follow_up_not_booked), 2)
    second = story.eligible(10)
    story.sent(story.started(second, 11), 12)
    appointment = story.booked(20)
    story.visit(appointment, 90)

    by_id = {e.eligibility_id: e for e in derived(story).episodes}
    assert by_id[second].outcome.completed_visits == 1
    assert by_id[first].outcome.bookings == 0


def test_holdout_outcomes_are_counted_from_assignment_and_never_as_outreach() -> None:
    story = Story("clinic-def")
    eligibility = story.eligible(0)
    story.started(eligibility, 1, pilot_id="pilot-a", arm=Arm.holdout)
    appointment = story.booked(48)
    story.visit(appointment, 120, cents=9_000)

    e = episode(story)
    assert (e.pilot_id, e.arm, e.first_sent_at) == ("pilot-a", "holdout", None)
    assert e.outcome.bookings == 0
    assert (e.assigned.bookings, e.assigned.completed_visits) == (1, 1)
    assert e.assigned.revenue_cents == 9_000


def test_an_eligibility_read_after_its_sequence_keeps_its_own_time() -> None:
    story = Story("clinic-def")
    eligibility = story.eligible(0)
    story.started(eligibility, 1)
    story.events.reverse()  # the sequence topic was read first

    e = episode(story)
    assert e.eligible_at == story.at(0)
    assert e.started_at == story.at(1)


def test_escalation_rows_carry_the_response_times_and_the_episode() -> None:
    story, sequence = messaged_story()
    story.escalation(sequence, 3, ack_after=0.25, resolve_after=2)

    d = derived(story)
    [row] = d.escalations
    assert row.acknowledged_at is not None
    assert row.acknowledged_at - row.raised_at == timedelta(minutes=15)
    assert row.resolved_at is not None and row.resolved_at - row.raised_at == timedelta(hours=2)
    assert row.eligibility_id == d.episodes[0].eligibility_id


def full_story() -> Story:
    story = Story("clinic-def")
    first = story.eligible(0)
    sequence = story.started(first, 1)
    message = story.sent(sequence, 2)
    story.sent(sequence, 50, delivered_after=None)
    story.reply(None, 3, ReplyIntent.question, in_reply_to=message)
    appointment = story.booked(5)
    story.kept(appointment, 70)
    story.visit(appointment, 71, cents=12_000)
    story.escalation(sequence, 4, ack_after=1, resolve_after=3)
    other = story.eligible(100, Segment.lapsed_patient, ServiceLine.acne)
    holdout = story.started(
        other,
        101,
        segment=Segment.lapsed_patient,
        line=ServiceLine.acne,
        pilot_id="pilot-b",
        arm=Arm.holdout,
    )
    assert holdout
    story.no_show(story.booked(120, ServiceLine.acne), 200)
    story.opt_out(300)
    return story


def test_recording_every_event_twice_changes_nothing() -> None:
    story = full_story()
    once = history_of(story.events, story)
    twice = history_of([e for e in story.events for _ in range(2)], story)
    assert twice == once
    assert derive(twice, WINDOW) == derive(once, WINDOW)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), repeats=st.lists(st.integers(0, 40), max_size=15))
def test_any_order_and_any_redelivery_give_the_same_figures(seed: int, repeats: list[int]) -> None:
    story = full_story()
    events = list(story.events)
    events += [events[i % len(events)] for i in repeats]
    random.Random(seed).shuffle(events)

    expected = derive(history_of(story.events, story), WINDOW)
    assert derive(history_of(events, story), WINDOW) == expected
