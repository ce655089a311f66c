"""The sequence state machine: starts, steps, every stop reason, snoozes, pauses, caps across
sequences, deferred sends, rest periods, holdouts and service recovery."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.sequencer.domain import lifecycle, operators
from services.sequencer.domain.lifecycle import PilotArm
from services.sequencer.domain.rules import Rules
from shared.events import Payload
from shared.events.common import ClinicalUrgency, Purpose, Segment, ServiceLine
from shared.events.eligibility import LeftReason
from shared.events.escalations import (
    CaseType,
    EscalationRaised,
    EscalationResolved,
    Outcome,
    Severity,
)
from shared.events.messages import (
    BlockReason,
    BookingRequested,
    ConsentScope,
    FailureReason,
    MessageBlocked,
    MessageFailed,
    OptedIn,
    OptedOut,
    RecordedVia,
    ReplyIntent,
    ReplyReceived,
    SnoozeRequested,
)
from shared.events.outreach import (
    Arm,
    CancelPendingSends,
    SequenceCompleted,
    SequenceStarted,
    SequenceStopped,
    StepScheduled,
    StopReason,
)
from tests.sequencer.helpers import EMAIL, NY, SMS, T0, Driver, eligible, left, message_id

NYZ = ZoneInfo(NY)


def started(d: Driver, **kw: object) -> str:
    d.feed(eligible(**kw))  # type: ignore[arg-type]
    assert d.active is not None
    return d.active.sequence_id


def reply(intent: ReplyIntent, seq: str | None = None, **kw: object) -> ReplyReceived:
    return ReplyReceived(
        reply_message_id=message_id(), channel=SMS, sequence_id=seq, intent=intent, **kw
    )


def opted_out(channel: object = None, scope: ConsentScope = ConsentScope.all) -> OptedOut:
    return OptedOut(
        channel=channel,  # type: ignore[arg-type]
        scope=scope,
        recorded_via=RecordedVia.reply_keyword,
        source_message_id=message_id(),
    )


def raised(
    case: str = "esc-1", case_type: CaseType = CaseType.clinical_question
) -> EscalationRaised:
    return EscalationRaised(
        escalation_id=case,
        case_type=case_type,
        severity=Severity.high,
        summary="Patient asked a clinical question",
    )


def resolved(
    case: str = "esc-1", resume: bool = True, outcome: Outcome = Outcome.answered
) -> EscalationResolved:
    return EscalationResolved(
        escalation_id=case, outcome=outcome, resolved_by="nurse-1", resume_outreach=resume
    )


# --- starting and stepping -----------------------------------------------------------------


def test_a_cancellation_sends_step_one_at_once_inside_allowed_hours() -> None:
    d = Driver()
    started(d)
    d.advance(timedelta(0))
    [(at, cmd)] = d.sends()
    assert at == T0
    assert (cmd.step, cmd.template_key, cmd.channel, cmd.fallback_channel) == (
        1,
        "cancellation_recovery.1",
        SMS,
        EMAIL,
    )
    assert cmd.purpose is Purpose.care and cmd.provider_id == "dr-1"
    assert cmd.idempotency_key == f"{cmd.sequence_id}:1"
    [begun] = d.of_type(SequenceStarted)
    assert (begun.workflow_key, begun.steps_planned, begun.arm) == (
        "cancellation_recovery",
        4,
        Arm.outreach,
    )


def test_a_cancellation_at_night_waits_for_eight_in_the_patients_morning() -> None:
    night = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)  # 22:00 in New York
    d = Driver(now=night)
    started(d, due_at=night)
    [scheduled] = d.of_type(StepScheduled)
    assert scheduled.scheduled_for == datetime(2026, 3, 4, 13, 0, tzinfo=UTC)
    d.advance(timedelta(hours=9, minutes=59))
    assert d.sends() == []
    d.advance(timedelta(minutes=1))
    assert [at for at, _ in d.sends()] == [datetime(2026, 3, 4, 13, 0, tzinfo=UTC)]


def test_the_patients_own_time_zone_sets_the_hours() -> None:
    d = Driver()  # 15:00 UTC is 07:00 in Los Angeles
    started(d, time_zone="America/Los_Angeles")
    d.advance(timedelta(hours=2))
    assert [at for at, _ in d.sends()] == [datetime(2026, 3, 3, 16, 0, tzinfo=UTC)]
    assert d.patient.time_zone == "America/Los_Angeles"


def test_a_whole_sequence_runs_four_steps_keeping_local_hours_across_dst_then_completes() -> None:
    d = Driver()
    sid = started(d)
    d.advance(timedelta(days=30))
    sends = d.sends()
    assert [c.step for _, c in sends] == [1, 2, 3, 4]
    assert [c.channel for _, c in sends] == [SMS, EMAIL, SMS, SMS]
    # 10:00 EST, then 10:00 EDT after 8 March: the same wall-clock hour every time.
    assert {at.astimezone(NYZ).hour for at, _ in sends} == {10}
    assert [at.date() for at, _ in sends] == [
        date(2026, 3, 3),
        date(2026, 3, 5),
        date(2026, 3, 9),
        date(2026, 3, 14),
    ]
    [done] = d.of_type(SequenceCompleted)
    assert (done.sequence_id, done.steps_sent) == (sid, 4)
    assert d.active is None


def test_a_window_eligibility_starts_at_opening_time_on_its_first_day() -> None:
    d = Driver()
    started(
        d,
        eligibility_id="fu-1",
        segment=Segment.follow_up_not_booked,
        opens_on=date(2026, 3, 10),
    )
    d.advance(timedelta(days=8))
    at, cmd = d.sends()[0]
    assert cmd.template_key == "skin_cancer_surveillance.1"
    assert at.astimezone(NYZ).replace(tzinfo=None) == datetime(2026, 3, 10, 8, 0)


def test_only_the_first_reminder_carries_the_documented_urgency() -> None:
    d = Driver()
    started(d, segment=Segment.follow_up_not_booked, urgency=ClinicalUrgency.soon)
    d.advance(timedelta(days=20))
    urgencies = [c.clinical_urgency for _, c in d.sends()]
    assert urgencies == [ClinicalUrgency.soon] + [ClinicalUrgency.routine] * 3


def test_the_same_eligibility_twice_is_one_sequence() -> None:
    d = Driver()
    started(d)
    d.feed(eligible())
    assert len(d.of_type(SequenceStarted)) == 1


# --- every stop reason ---------------------------------------------------------------------


def _blocked(reason: BlockReason) -> Callable[[Driver, str], list[Payload]]:
    return lambda d, sid: [MessageBlocked(sequence_id=sid, step=1, channel=SMS, reason=reason)]


def _failures(d: Driver, sid: str) -> list[Payload]:
    return [
        MessageFailed(
            message_id=message_id(),
            sequence_id=sid,
            step=1,
            channel=SMS,
            failure=FailureReason.invalid_address,
            permanent=True,
        )
        for _ in range(2)
    ]


STOPS: dict[StopReason, Callable[[Driver, str], list[Payload]]] = {
    StopReason.booked: lambda d, sid: [left(reason=LeftReason.booked)],
    StopReason.completed: lambda d, sid: [left(reason=LeftReason.visit_completed)],
    StopReason.left_segment: lambda d, sid: [left(reason=LeftReason.plan_cancelled)],
    StopReason.declined: lambda d, sid: [reply(ReplyIntent.decline, sid)],
    StopReason.no_longer_needed: lambda d, sid: [reply(ReplyIntent.no_longer_needed, sid)],
    StopReason.opted_out: lambda d, sid: [opted_out()],
    StopReason.wrong_number: lambda d, sid: [reply(ReplyIntent.wrong_number, sid)],
    StopReason.no_contact: _blocked(BlockReason.no_contact),
    StopReason.undeliverable: _failures,
    StopReason.escalated: lambda d, sid: [raised(), resolved(resume=False)],
    StopReason.deceased: lambda d, sid: [left(reason=LeftReason.deceased)],
    StopReason.expired: lambda d, sid: [left(reason=LeftReason.window_closed)],
    StopReason.superseded: lambda d, sid: [eligible("elig-2", Segment.follow_up_not_booked)],
}


@pytest.mark.parametrize("reason", list(STOPS), ids=lambda r: r.value)
def test_every_stop_reason_stops_cancels_pending_sends_and_nothing_goes_after(
    reason: StopReason,
) -> None:
    d = Driver()
    sid = started(d)
    d.advance(timedelta(hours=1))  # step 1 has gone
    for event in STOPS[reason](d, sid):
        d.feed(event)
    stopped = [e for e in d.of_type(SequenceStopped) if e.sequence_id == sid]
    assert [(e.reason, e.steps_sent) for e in stopped] == [(reason, 1)]
    assert [e.reason for e in d.of_type(CancelPendingSends) if e.sequence_id == sid] == [reason]
    d.advance(timedelta(days=30))
    assert [c.step for _, c in d.sends() if c.sequence_id == sid] == [1]


def test_the_stop_table_covers_every_stop_reason() -> None:
    assert set(STOPS) | {StopReason.manual} == set(StopReason)


def test_staff_stopping_a_patients_outreach_is_a_manual_stop() -> None:
    d = Driver()
    sid = started(d)
    d.operate(operators.stop_by_staff)
    assert [(e.sequence_id, e.reason) for e in d.of_type(SequenceStopped)] == [
        (sid, StopReason.manual)
    ]
    d.advance(timedelta(days=30))
    assert d.sends() == []


def test_a_booking_confirmed_by_an_escalation_outcome_stops_as_booked() -> None:
    d = Driver()
    started(d)
    d.feed(raised())
    d.feed(resolved(resume=False, outcome=Outcome.booked))
    assert [e.reason for e in d.of_type(SequenceStopped)] == [StopReason.booked]


def test_leaving_another_segment_does_not_stop_this_sequence() -> None:
    d = Driver()
    started(d)
    d.feed(left("some-other-need"))
    assert d.of_type(SequenceStopped) == [] and d.active is not None


# --- snoozes and holds ---------------------------------------------------------------------


def test_remind_me_later_moves_the_next_step_to_the_asked_day() -> None:
    d = Driver()
    sid = started(d)
    d.advance(timedelta(hours=1))
    d.feed(reply(ReplyIntent.later, sid, snooze_until=date(2026, 3, 20)))
    d.advance(timedelta(days=30))
    steps = [(c.step, at) for at, c in d.sends()]
    assert steps[1][0] == 2
    assert steps[1][1].astimezone(NYZ).replace(tzinfo=None) == datetime(2026, 3, 20, 8, 0)


def test_a_snooze_is_bounded_to_ninety_days() -> None:
    d = Driver()
    sid = started(d)
    d.advance(timedelta(hours=1))
    d.feed(SnoozeRequested(sequence_id=sid, until=date(2027, 6, 1)))
    assert d.active is not None and d.active.next_due is not None
    assert d.active.next_due.astimezone(NYZ).date() == date(2026, 6, 1)


def test_a_snooze_after_the_last_step_sends_nothing_more_before_the_asked_day() -> None:
    d = Driver()
    sid = started(d)
    d.advance(timedelta(days=12))  # all four steps have gone
    d.feed(reply(ReplyIntent.later, sid, snooze_until=date(2026, 5, 1)))
    d.advance(timedelta(days=5))
    assert [c.step for _, c in d.sends()] == [1, 2, 3, 4]
    assert d.patient.rest_until is not None
    assert d.patient.rest_until.astimezone(NYZ).date() >= date(2026, 5, 1)


def test_asking_to_book_holds_the_next_step_while_the_booking_is_made() -> None:
    d = Driver()
    sid = started(d)
    d.advance(timedelta(hours=1))
    d.feed(reply(ReplyIntent.book, sid))
    d.feed(
        BookingRequested(
            booking_request_id="br-1",
            slot_id="slot-1",
            slot_start=T0 + timedelta(days=3),
            service_line=ServiceLine.skin_check,
            provider_id="dr-1",
            location_id="loc-1",
            sequence_id=sid,
        )
    )
    d.advance(timedelta(days=6))
    assert [c.step for _, c in d.sends()] == [1]
    d.feed(left(reason=LeftReason.booked))
    assert [e.reason for e in d.of_type(SequenceStopped)] == [StopReason.booked]


def test_a_clinical_concern_holds_the_next_step_for_people_to_answer() -> None:
    d = Driver()
    sid = started(d)
    d.advance(timedelta(days=1))
    d.feed(reply(ReplyIntent.clinical_concern, sid))
    assert d.active is not None and d.active.next_due is not None
    assert d.active.next_due >= d.now + timedelta(hours=48)


# --- escalations and staff pauses ----------------------------------------------------------


def test_an_open_escalation_pauses_and_a_resolution_with_resume_continues() -> None:
    d = Driver()
    started(d)
    d.advance(timedelta(hours=1))
    d.feed(raised())
    d.advance(timedelta(days=10))
    assert [c.step for _, c in d.sends()] == [1]
    assert d.active is not None and not d.active.armed
    d.feed(resolved(resume=True))
    d.advance(timedelta(hours=1))
    assert [c.step for _, c in d.sends()] == [1, 2]


def test_outreach_stays_paused_while_any_case_is_open() -> None:
    d = Driver()
    started(d)
    d.advance(timedelta(hours=1))
    d.feed(raised("esc-1"))
    d.feed(raised("esc-2", CaseType.unclassified_reply))
    d.feed(resolved("esc-1"))
    d.advance(timedelta(days=5))
    assert [c.step for _, c in d.sends()] == [1]
    d.feed(resolved("esc-2"))
    d.advance(timedelta(hours=1))
    assert [c.step for _, c in d.sends()] == [1, 2]


def test_a_sequence_that_starts_during_an_open_case_waits_for_it() -> None:
    d = Driver()
    d.feed(raised())
    started(d)
    d.advance(timedelta(days=2))
    assert d.sends() == []
    d.feed(resolved())
    d.advance(timedelta(minutes=1))
    assert [c.step for _, c in d.sends()] == [1]


def test_staff_can_pause_and_resume_a_patients_outreach() -> None:
    d = Driver()
    started(d)
    d.advance(timedelta(hours=1))
    d.operate(operators.pause)
    d.advance(timedelta(days=8))
    assert [c.step for _, c in d.sends()] == [1]
    d.operate(operators.resume)
    d.advance(timedelta(hours=1))
    assert [c.step for _, c in d.sends()] == [1, 2]


# --- consent per channel -------------------------------------------------------------------


def test_a_stop_by_text_ends_the_sequence_instead_of_moving_it_to_email() -> None:
    d = Driver()
    started(d)
    d.advance(timedelta(hours=1))
    d.feed(opted_out(SMS))
    d.advance(timedelta(days=20))
    assert [(c.step, c.channel, c.fallback_channel) for _, c in d.sends()] == [(1, SMS, EMAIL)]
    assert [e.reason for e in d.of_type(SequenceStopped)] == [StopReason.opted_out]
    assert d.patient.opt_outs == frozenset({"sms:all"})  # e-mail stays open for later needs


def test_opting_back_in_restores_the_channel() -> None:
    d = Driver()
    started(d)
    d.advance(timedelta(hours=1))
    d.feed(opted_out())  # every channel: stops the sequence
    d.feed(OptedIn(channel=SMS, scope=ConsentScope.all, recorded_via=RecordedVia.staff))
    assert d.patient.opt_outs == frozenset({"email:all"})


def test_a_marketing_opt_out_stops_cosmetic_outreach_but_not_care() -> None:
    cosmetic = Driver()
    started(cosmetic, segment=Segment.cosmetic_maintenance_due, line=ServiceLine.neurotoxin)
    cosmetic.advance(timedelta(hours=1))
    assert [c.purpose for _, c in cosmetic.sends()] == [Purpose.marketing]
    cosmetic.feed(opted_out(scope=ConsentScope.marketing))
    assert [e.reason for e in cosmetic.of_type(SequenceStopped)] == [StopReason.opted_out]

    care = Driver()
    started(care)
    care.advance(timedelta(hours=1))
    care.feed(opted_out(scope=ConsentScope.marketing))
    care.advance(timedelta(days=3))
    assert [c.step for _, c in care.sends()] == [1, 2]


def test_no_usable_channel_at_the_start_records_and_stops_the_sequence() -> None:
    d = Driver()
    d.feed(opted_out())
    d.feed(eligible())
    assert len(d.of_type(SequenceStarted)) == 1
    assert [e.reason for e in d.of_type(SequenceStopped)] == [StopReason.opted_out]
    d.advance(timedelta(days=20))
    assert d.sends() == []


# --- caps across sequences, deferrals, rest ------------------------------------------------


def test_caps_count_messages_across_overlapping_sequences() -> None:
    d = Driver()
    started(d)
    d.advance(timedelta(hours=1))  # sequence A sends step 1 at 10:00
    d.feed(eligible("elig-2", Segment.follow_up_not_booked))  # B supersedes A an hour later
    d.advance(timedelta(days=1))
    sends = d.sends()
    assert [c.template_key for _, c in sends] == [
        "cancellation_recovery.1",
        "skin_cancer_surveillance.1",
    ]
    assert sends[1][0] - sends[0][0] >= timedelta(days=1)


def test_no_more_than_three_messages_in_any_week_across_sequences() -> None:
    d = Driver()
    for n in range(6):  # a new sequence every day supersedes the last
        d.feed(eligible(f"elig-{n}"))
        d.advance(timedelta(days=1))
    times = [at for at, _ in d.sends()]
    for at in times:
        assert sum(1 for t in times if at - timedelta(days=7) < t <= at) <= 3
        assert sum(1 for t in times if at - timedelta(days=1) < t <= at) <= 1
    assert len(times) == 3  # the fourth, fifth and sixth would each break the weekly cap


def test_a_step_deferred_for_quiet_hours_is_planned_again_at_retry_after() -> None:
    d = Driver()
    sid = started(d)
    d.advance(timedelta(minutes=1))
    retry = datetime(2026, 3, 4, 13, 0, tzinfo=UTC)
    d.feed(
        MessageBlocked(
            sequence_id=sid, step=1, channel=SMS, reason=BlockReason.quiet_hours, retry_after=retry
        )
    )
    assert d.active is not None and (d.active.next_step, d.active.next_due) == (1, retry)
    assert d.patient.sends == ()  # a blocked message does not count toward the caps
    d.advance(timedelta(days=3))
    assert [(c.step, at) for at, c in d.sends()][:2] == [(1, T0), (1, retry)]
    assert [c.step for _, c in d.sends()][2:] == [2]


def test_a_step_blocked_for_a_missing_template_is_skipped_and_the_sequence_goes_on() -> None:
    d = Driver()
    sid = started(d)
    d.advance(timedelta(minutes=1))
    d.feed(
        MessageBlocked(
            sequence_id=sid, step=1, channel=SMS, reason=BlockReason.template_not_approved
        )
    )
    d.advance(timedelta(days=3))
    assert [c.step for _, c in d.sends()] == [1, 2]


def test_a_new_sequence_rests_after_the_last_one_ran_out() -> None:
    d = Driver()
    started(d)
    d.advance(timedelta(days=20))  # four steps, then 72 hours for replies: done on 17 March
    [_done] = d.of_type(SequenceCompleted)
    rest_until = datetime(2026, 3, 17, 14, tzinfo=UTC) + timedelta(days=30)
    assert d.patient.rest_until == rest_until
    d.feed(eligible("elig-2", Segment.follow_up_not_booked))
    d.advance(timedelta(days=60))
    first_of_b = next(at for at, c in d.sends() if c.template_key.startswith("skin_cancer"))
    assert first_of_b == rest_until  # 10:00 EDT: inside allowed hours


def test_no_rest_after_the_patient_booked() -> None:
    d = Driver()
    started(d)
    d.advance(timedelta(hours=1))
    d.feed(left(reason=LeftReason.booked))
    assert d.patient.rest_until is None


# --- pilots and service recovery -----------------------------------------------------------


def test_a_holdout_sequence_is_recorded_sends_nothing_and_completes_when_the_pilot_ends() -> None:
    d = Driver()
    pilot = PilotArm("pilot-1", Arm.holdout, T0 + timedelta(days=30))
    d.apply(lifecycle.on_eligible(d.patient, None, eligible(), d.ctx, pilot))
    [begun] = d.of_type(SequenceStarted)
    assert (begun.pilot_id, begun.arm, begun.steps_planned) == ("pilot-1", Arm.holdout, 0)
    d.advance(timedelta(days=29))
    assert d.sends() == [] and d.of_type(SequenceCompleted) == []
    d.advance(timedelta(days=2))
    assert [e.steps_sent for e in d.of_type(SequenceCompleted)] == [0]


def test_a_holdout_patient_who_books_is_recorded_as_booked() -> None:
    d = Driver()
    pilot = PilotArm("pilot-1", Arm.holdout, T0 + timedelta(days=30))
    d.apply(lifecycle.on_eligible(d.patient, None, eligible(), d.ctx, pilot))
    d.feed(left(reason=LeftReason.booked))
    assert [e.reason for e in d.of_type(SequenceStopped)] == [StopReason.booked]
    assert d.of_type(CancelPendingSends) == []  # nothing was ever pending


def test_a_recorded_poor_experience_replaces_outreach_with_service_recovery() -> None:
    d = Driver()
    sid = started(d)
    d.advance(timedelta(hours=1))
    d.feed(raised("rec-1", CaseType.poor_experience))
    d.feed(left(reason=LeftReason.service_recovery))
    assert [(e.sequence_id, e.reason) for e in d.of_type(SequenceStopped)] == [
        (sid, StopReason.escalated)
    ]
    assert d.active is not None and d.active.workflow_key == "service_recovery"
    d.advance(timedelta(days=4))
    recovery = [(at, c) for at, c in d.sends() if c.workflow_key == "service_recovery"]
    assert recovery, "the poor-experience case does not pause its own recovery sequence"
    assert recovery[0][0] >= T0 + timedelta(hours=49)  # a person has 48 hours to call first
    assert recovery[0][1].purpose is Purpose.care
    d.feed(resolved("rec-1", resume=True))
    assert d.active is None
    assert d.of_type(SequenceStopped)[-1].reason is StopReason.escalated


def test_the_rules_can_be_changed_per_clinic() -> None:
    d = Driver(rules=Rules(zone=NY, per_day=0, per_week=0))
    started(d)
    d.advance(timedelta(hours=1))
    d.feed(eligible("elig-2", Segment.follow_up_not_booked))
    d.advance(timedelta(minutes=1))
    assert len(d.sends()) == 2  # no caps: the second sequence's first step goes at once


def test_an_eligibility_that_was_left_never_reopens_its_sequence() -> None:
    d = Driver()
    sid = started(d)
    d.feed(eligible("elig-2"))  # supersedes elig-1
    d.feed(eligible("elig-1"))  # a stray repeat of the old need
    assert d.active is not None and d.active.sequence_id != sid
    assert [e.sequence_id for e in d.of_type(SequenceStarted)].count(sid) == 1
