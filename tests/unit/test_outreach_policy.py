"""One outreach policy: the messenger never sends what the sequencer's policy would not have
scheduled, for any clinic and state configuration and any clock (property-tested).

The sequencer asks ``earliest_send`` when a step may go; the messenger asks ``send_refusal``
whether it may go now, from the policy snapshot the SendStep carries. The properties run over
random clinic hours, caps, clinic and home states, state tables, zones (with daylight-saving
changes, half-hour offsets and UTC+14), send histories and instants.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from services.messenger.domain.checks import ContactCard, check_send
from services.sequencer.domain.model import Patient, Sequence
from services.sequencer.domain.rules import AllowedHours, Rules, plan
from services.sequencer.domain.steps import Context, command_for
from services.sequencer.domain.workflows import Catalogue
from shared.events.common import (
    Channel,
    ClinicalUrgency,
    Purpose,
    Segment,
    SegmentKind,
    ServiceLine,
)
from shared.outreach_policy import (
    OutreachPolicy,
    earliest_send,
    is_allowed,
    next_allowed,
    send_refusal,
)

ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
    "Europe/London",
    "Australia/Lord_Howe",  # a half-hour daylight-saving change
    "Asia/Kolkata",
    "Pacific/Kiritimati",  # UTC+14
    "UTC",
]
STATES = ["FL", "TX", "MD", "OK", "CA", "NY", "WA"]
START = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def hours(draw: st.DrawFn, low: int = 6, high: int = 22) -> tuple[time, time]:
    start = draw(st.integers(low * 4, high * 4 - 2))
    end = draw(st.integers(start + 1, high * 4))
    return time(start // 4, start % 4 * 15), time(end // 4 if end < 96 else 23, end % 4 * 15)


@st.composite
def policies(draw: st.DrawFn) -> OutreachPolicy:
    clinic_from, clinic_until = draw(hours())
    table = draw(st.dictionaries(st.sampled_from(STATES), hours(), max_size=4))
    return OutreachPolicy(
        zone=draw(st.sampled_from(ZONES)),
        allowed_from=clinic_from,
        allowed_until=clinic_until,
        clinic_state=draw(st.none() | st.sampled_from(STATES)),
        state_hours=table,
        per_day=draw(st.integers(0, 3)),
        per_week=draw(st.integers(0, 6)),
    )


instants = st.integers(0, 400 * 24 * 60).map(lambda m: START + timedelta(minutes=m))
home_states = st.none() | st.sampled_from(STATES)


@st.composite
def histories(draw: st.DrawFn, now: datetime) -> list[datetime]:
    back = draw(st.lists(st.integers(1, 10 * 24 * 60), max_size=6))
    return [now - timedelta(minutes=m) for m in back]


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    policy=policies(), zone=st.sampled_from(ZONES), state=home_states, now=instants, data=st.data()
)
def test_the_messenger_never_sends_what_the_sequencer_would_not_have_scheduled(
    policy: OutreachPolicy, zone: str, state: str | None, now: datetime, data: st.DataObject
) -> None:
    sends = data.draw(histories(now))
    where = ZoneInfo(zone)
    allowed_now = send_refusal(policy, now, zones=[where], states=[state], sends=sends) is None
    scheduled = earliest_send(policy, now, zone=where, states=[state], sends=sends)
    # Whatever the configuration: the messenger lets through only what the sequencer schedules.
    assert not allowed_now or scheduled == now
    if policy.conflicts():
        return  # hours the configuration API refuses: nothing may be sent (tested below)
    assert allowed_now == (scheduled == now)
    # What the sequencer schedules, the messenger lets through at that moment.
    assert send_refusal(policy, scheduled, zones=[where], states=[state], sends=sends) is None


@SETTINGS
@given(
    policy=policies(),
    zone=st.sampled_from(ZONES),
    card_zone=st.sampled_from(ZONES),
    state=home_states,
    card_state=home_states,
    now=instants,
)
def test_what_the_messenger_knows_better_only_narrows_the_window(
    policy: OutreachPolicy,
    zone: str,
    card_zone: str,
    state: str | None,
    card_state: str | None,
    now: datetime,
) -> None:
    zones = [ZoneInfo(zone), ZoneInfo(card_zone)]
    refusal = send_refusal(policy, now, zones=zones, states=[state, card_state])
    if refusal is None:
        assert earliest_send(policy, now, zone=ZoneInfo(zone), states=[state]) == now
    else:
        assert refusal.retry_after is None or refusal.retry_after > now


@SETTINGS
@given(policy=policies(), zone=st.sampled_from(ZONES), state=home_states, now=instants)
def test_an_allowed_moment_is_inside_the_strictest_hours_on_the_local_clock(
    policy: OutreachPolicy, zone: str, state: str | None, now: datetime
) -> None:
    assume(not policy.conflicts())  # the configuration API refuses state hours that cannot meet
    where = ZoneInfo(zone)
    at = earliest_send(policy, now, zone=where, states=[state])
    window = policy.hours_for([state])
    assert window.start <= at.astimezone(where).time().replace(tzinfo=None) < window.end
    assert at - now < timedelta(days=2)  # never more than a night and a day away without caps
    for code in {policy.clinic_state, state} - {None}:
        found = policy.state_hours.get(code)  # type: ignore[arg-type]
        if found is not None:
            assert found[0] <= at.astimezone(where).time().replace(tzinfo=None) < found[1]


@SETTINGS
@given(
    policy=policies(),
    zone=st.sampled_from(ZONES),
    state=home_states,
    now=instants,
    step=st.integers(1, 4),
)
def test_a_command_the_sequencer_makes_is_checked_with_the_policy_it_was_planned_with(
    policy: OutreachPolicy, zone: str, state: str | None, now: datetime, step: int
) -> None:
    rules = Rules(
        zone=policy.zone,
        hours=AllowedHours(policy.allowed_from, policy.allowed_until),
        per_day=policy.per_day,
        per_week=policy.per_week,
        clinic_state=policy.clinic_state,
        state_hours=policy.state_hours,
    )
    assume(not policy.conflicts())
    due = plan(now, ZoneInfo(zone), rules, state=state)
    ctx = Context(now=due, rules=rules, catalogue=Catalogue.default())
    patient = Patient("c1:p1", time_zone=zone, home_state=state)
    seq = Sequence(
        sequence_id="seq-1",
        patient_key="c1:p1",
        eligibility_id="e-1",
        segment=Segment.follow_up_not_booked,
        kind=SegmentKind.recall,
        service_line=ServiceLine.skin_check,
        workflow_key="follow_up",
        purpose=Purpose.care,
        urgency=ClinicalUrgency.routine,
        provider_id=None,
        location_id=None,
        steps_planned=4,
        started_at=now,
        time_zone=zone,
        home_state=state,
    )
    wf = ctx.catalogue.get("follow_up")
    assert wf is not None
    cmd = command_for(patient, seq, wf.step(step), (Channel.sms, None), due, ctx)
    card = ContactCard("c1:p1", "Ana", "+15555550100", None, "en", zone, home_state=state)
    assert check_send(card, cmd, due) is None
    # A minute before the window opens (when it was not open at ``now``), it is refused.
    if due > now:
        early = due - timedelta(minutes=1)
        assume(not is_allowed(early, ZoneInfo(zone), rules.hours_for(state)))
        later = cmd.model_copy(update={"not_before": early - timedelta(hours=1)})
        blocked = check_send(card, later, early)
        assert blocked is not None and blocked.retry_after == due


def test_a_state_whose_hours_do_not_overlap_the_clinics_is_never_messaged_and_is_reported() -> None:
    policy = OutreachPolicy(
        allowed_from=time(18), allowed_until=time(21), state_hours={"FL": (time(8), time(17))}
    )
    assert policy.conflicts() == ["FL"]
    assert policy.hours_for(["FL"]) is None  # no moment both allow: nothing is sent
    for hour in range(24):
        at = datetime(2026, 3, 3, hour, 30, tzinfo=UTC)
        refused = send_refusal(policy, at, zones=[ZoneInfo("America/New_York")], states=["FL"])
        assert refused is not None and refused.retry_after == at + timedelta(days=1)
    assert next_allowed(at, ZoneInfo("America/New_York"), policy.hours_for([])) == at
