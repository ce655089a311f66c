"""Each SendStep says what the eligibility documented and carries the policy it was planned with;
a reminder closed by its last step is not chased again; the patient's home state narrows hours."""

from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

from services.sequencer.domain.rules import Rules
from shared.events.common import Segment, ServiceLine
from shared.events.eligibility import Documented, PatientBecameEligible, ReasonSource
from shared.events.messages import ReplyIntent, ReplyReceived
from shared.events.outreach import SendStep, SequenceStarted
from tests.sequencer.helpers import NY, T0, Driver, eligible, message_id

DUE = date(2026, 3, 10)  # a week after T0
SMS = "sms"


def documented_eligible(
    eligibility_id: str = "fu-1", *, home_state: str | None = None, due: date = DUE
) -> PatientBecameEligible:
    base = eligible(eligibility_id, Segment.follow_up_not_booked, ServiceLine.general_dermatology)
    facts = Documented(
        source=ReasonSource.visit,
        recorded_on=date(2026, 1, 10),
        recorded_at=T0 - timedelta(days=52),
        due_on=due,
    )
    return base.model_copy(update={"documented": facts, "home_state": home_state})


def test_every_step_carries_the_documented_facts_and_whether_the_date_has_passed() -> None:
    d = Driver(rules=Rules(zone=NY, per_week=7))
    d.feed(documented_eligible())
    d.advance(timedelta(days=30))
    sends = [cmd for _, cmd in d.sends()]
    assert [c.step for c in sends] == [1, 2, 3, 4]
    assert {c.documented for c in sends} == {documented_eligible().documented}
    local_days = [at.astimezone(ZoneInfo(NY)).date() for at, _ in d.sends()]
    assert [c.overdue for c in sends] == [day > DUE for day in local_days]
    assert sends[0].overdue is False and sends[-1].overdue is True
    assert all(c.policy == d.rules.policy for c in sends)
    assert {c.time_zone for c in sends} == {NY}


def test_a_step_without_a_due_date_says_nothing_of_being_overdue() -> None:
    d = Driver()
    d.feed(eligible())  # a cancellation: no due date
    d.advance(timedelta(hours=1))
    [(_, cmd)] = d.sends()
    assert cmd.overdue is None


def test_a_reminder_closed_by_its_last_step_is_not_chased_again() -> None:
    d = Driver(rules=Rules(zone=NY, per_week=7))
    d.feed(documented_eligible("fu-1"))
    d.advance(timedelta(days=60))  # four steps, the close, the rest
    assert len(d.sends()) == 4
    d.feed(documented_eligible("fu-1-2"))  # the same need emitted again (held, then primary)
    d.advance(timedelta(days=60))
    assert len(d.sends()) == 4
    assert len(d.of_type(SequenceStarted)) == 1
    d.feed(documented_eligible("fu-1-3", due=DUE + timedelta(days=180)))  # the next cycle
    d.advance(timedelta(days=60))
    assert len(d.of_type(SequenceStarted)) == 2 and len(d.sends()) > 4


def test_a_declined_reminder_is_not_chased_again_either() -> None:
    d = Driver(rules=Rules(zone=NY, decline_rest_days=0))
    d.feed(documented_eligible("fu-1"))
    d.advance(timedelta(hours=1))
    [(_, first)] = d.sends()
    d.feed(
        ReplyReceived(
            reply_message_id=message_id(),
            channel=SMS,
            sequence_id=first.sequence_id,
            intent=ReplyIntent.decline,
        )
    )
    d.feed(documented_eligible("fu-1-2"))
    d.advance(timedelta(days=30))
    assert len(d.sends()) == 1


def test_the_patients_home_state_narrows_the_hours_the_step_is_planned_in() -> None:
    texas = {"TX": (time(9), time(21))}
    rules = Rules(zone="America/Chicago", state_hours=texas)
    d = Driver(now=T0.replace(hour=13, minute=30), rules=rules)  # 07:30 in Chicago
    d.feed(
        documented_eligible(home_state="TX").model_copy(
            update={"time_zone": "America/Chicago", "due_at": T0.replace(hour=13, minute=30)}
        )
    )
    d.advance(timedelta(hours=6))
    [(at, cmd)] = d.sends()[:1]
    assert at.astimezone(ZoneInfo("America/Chicago")).time() == time(9)  # Texas opens at 09:00
    assert cmd.home_state == "TX" and cmd.policy.state_hours["TX"] == (time(9), time(21))
    assert isinstance(cmd, SendStep)
