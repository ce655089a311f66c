"""The preview projects what the timers would send, and a sequence survives its table row."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from zoneinfo import ZoneInfo

from services.sequencer.domain import operators
from services.sequencer.domain.model import Sequence, evolve
from services.sequencer.domain.preview import project
from services.sequencer.repository.rows import SEQ_COLS, row_to_sequence
from shared.events.common import Segment
from shared.events.messages import ConsentScope, OptedOut, RecordedVia
from shared.events.outreach import StopReason
from tests.sequencer.helpers import NY, T0, Driver, eligible


def test_the_preview_lists_the_coming_steps_with_time_and_reason() -> None:
    d = Driver()
    d.feed(eligible(segment=Segment.follow_up_not_booked))
    d.advance(timedelta(hours=1))  # step 1 went
    seq = d.active
    assert seq is not None
    coming = project(d.patient, seq, d.ctx, timedelta(days=8))
    assert [(p.step, p.template_key, p.channel) for p in coming] == [
        (2, "skin_cancer_surveillance.2", "email"),
        (3, "skin_cancer_surveillance.3", "sms"),
    ]
    assert coming[0].at == T0 + timedelta(days=3)
    assert "remove friction" in coming[0].why
    assert "Fri 10:00 in America/New_York" in coming[0].why
    assert coming[0].at is not None and coming[0].at.astimezone(ZoneInfo(NY)).hour == 10
    assert coming[0].patient_key == d.key and "@" not in coming[0].why


def test_the_preview_shows_a_paused_patient_as_waiting() -> None:
    d = Driver()
    d.feed(eligible())
    d.advance(timedelta(hours=1))
    d.operate(operators.pause)
    seq = d.active
    assert seq is not None
    [waiting] = project(d.patient, seq, d.ctx, timedelta(days=7))
    assert (waiting.step, waiting.at, waiting.why) == (2, None, "paused by staff")


def test_the_preview_says_when_no_channel_is_left() -> None:
    d = Driver()
    d.feed(eligible())
    d.advance(timedelta(hours=1))
    seq = d.active
    assert seq is not None
    gone = evolve(
        d.patient, opt_outs=frozenset({"sms:all", "email:all"})
    )  # as if both opt-outs had just been recorded
    [only] = project(gone, seq, d.ctx, timedelta(days=7))
    assert only.channel is None and "would stop" in only.why
    d.feed(OptedOut(channel=None, scope=ConsentScope.all, recorded_via=RecordedVia.staff))
    assert d.active is None
    stopped = d.sequences[seq.sequence_id]
    assert stopped.stop_reason is StopReason.opted_out
    assert project(d.patient, stopped, d.ctx, timedelta(days=7)) == []


def test_a_sequence_survives_a_round_trip_through_its_row() -> None:
    d = Driver()
    d.feed(eligible(time_zone="America/Chicago"))
    seq = d.active
    assert seq is not None
    row = {
        f.name: (v.value if hasattr(v, "value") else v)
        for f in dataclasses.fields(Sequence)
        for v in [getattr(seq, f.name)]
    }
    row["clinic_id"] = seq.clinic_id
    assert set(row) == set(SEQ_COLS)
    assert row_to_sequence(row) == seq


def test_the_first_steps_are_known_only_when_nothing_unread_can_come_before_them() -> None:
    from services.sequencer.domain.preview import first_known

    times = [T0 + timedelta(days=d) for d in (1, 3)]
    assert not first_known(times, 3, T0)  # too few
    assert first_known(times, 2, T0 + timedelta(days=4))  # the rest send on day 4 or later
    assert not first_known(times, 2, T0 + timedelta(days=3))  # one unread may tie on day 3
    assert not first_known(times, 2, T0 + timedelta(days=2))  # one unread may send on day 2
