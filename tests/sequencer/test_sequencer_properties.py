"""Property: whatever order eligibility, replies, bookings, opt-outs, escalations, deferrals and
staff actions arrive in, no step goes after its sequence stopped, no step goes while outreach is
paused or on a channel the patient left, every step is inside allowed hours, the caps hold across
all sequences, and a patient never has two active sequences."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.sequencer.domain import operators
from services.sequencer.domain.model import Outcome, Patient
from services.sequencer.domain.rules import is_allowed
from shared.events.common import Channel, Segment, ServiceLine
from shared.events.eligibility import LeftReason
from shared.events.escalations import (
    CaseType,
    EscalationRaised,
    EscalationResolved,
    Severity,
)
from shared.events.escalations import (
    Outcome as Resolution,
)
from shared.events.messages import (
    BlockReason,
    BookingRequested,
    ConsentScope,
    MessageBlocked,
    OptedIn,
    OptedOut,
    RecordedVia,
    ReplyIntent,
    ReplyReceived,
    SnoozeRequested,
)
from shared.events.outreach import SendStep, SequenceCompleted, SequenceStopped
from tests.sequencer.helpers import NY, Driver, eligible, left

NYZ = ZoneInfo(NY)
SEGMENTS = [
    Segment.cancelled_not_rescheduled,
    Segment.follow_up_not_booked,
    Segment.cosmetic_maintenance_due,
    Segment.lapsed_patient,
]
LINES = {Segment.cosmetic_maintenance_due: ServiceLine.neurotoxin}


@dataclass
class Checked(Driver):
    """A driver that checks, at the moment each step is commanded, that it was allowed to be."""

    commanded: list[tuple[str, int, datetime]] = field(default_factory=list)
    closed: set[str] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)

    def apply(self, out: Outcome) -> Outcome:
        before: Patient = self.patient
        for event in out.events:
            if isinstance(event, SendStep):
                self._check_send(before, event)
        result = super().apply(out)
        for event in out.events:
            if isinstance(event, SequenceStopped | SequenceCompleted):
                self.closed.add(event.sequence_id)
        _ = self.active  # asserts at most one active sequence
        return result

    def _check_send(self, patient: Patient, cmd: SendStep) -> None:
        seq = self.sequences.get(cmd.sequence_id)
        if cmd.sequence_id in self.closed:
            self.violations.append("a step after its sequence ended")
        if seq is not None and patient.paused_for(seq):
            self.violations.append("a step while outreach was paused")
        if not patient.may_use(cmd.channel, cmd.purpose):
            self.violations.append("a step on an opted-out channel")
        zone = ZoneInfo((seq.time_zone if seq else None) or NY)
        if not is_allowed(self.now, zone, self.rules.hours):
            self.violations.append("a step outside allowed hours")
        if seq is not None and cmd.step > seq.steps_planned:
            self.violations.append("more steps than the workflow defines")
        self.commanded.append((cmd.sequence_id, cmd.step, self.now))

    def retract(self, sequence_id: str, step: int) -> None:
        for i in range(len(self.commanded) - 1, -1, -1):
            if self.commanded[i][:2] == (sequence_id, step):
                del self.commanded[i]
                return


channels = st.sampled_from([None, Channel.sms, Channel.email])
actions = st.one_of(
    st.tuples(st.just("eligible"), st.integers(0, 3), st.sampled_from(SEGMENTS)),
    st.tuples(st.just("left"), st.sampled_from(list(LeftReason)), st.booleans()),
    st.tuples(st.just("reply"), st.sampled_from(list(ReplyIntent)), st.integers(0, 120)),
    st.tuples(st.just("opt_out"), channels, st.sampled_from(list(ConsentScope))),
    st.tuples(st.just("opt_in"), channels, st.sampled_from(list(ConsentScope))),
    st.tuples(st.just("booking"), st.just(0), st.just(0)),
    st.tuples(st.just("snooze"), st.integers(-5, 200), st.just(0)),
    st.tuples(st.just("raise"), st.integers(0, 2), st.sampled_from(list(CaseType))),
    st.tuples(st.just("resolve"), st.integers(0, 2), st.booleans()),
    st.tuples(
        st.just("blocked"),
        st.sampled_from(
            [
                BlockReason.quiet_hours,
                BlockReason.frequency_cap,
                BlockReason.escalation_open,
                BlockReason.template_not_approved,
                BlockReason.opted_out,
                BlockReason.no_contact,
            ]
        ),
        st.integers(0, 72),
    ),
    st.tuples(st.just("staff"), st.sampled_from(["pause", "resume", "stop"]), st.just(0)),
    st.tuples(st.just("advance"), st.integers(0, 120), st.just(0)),
)


def run(d: Checked, action: tuple[object, ...]) -> None:
    kind, a, b = action
    active = d.active
    sid = active.sequence_id if active else None
    if kind == "eligible":
        segment = b  # type: ignore[assignment]
        d.feed(eligible(f"elig-{a}", segment, LINES.get(segment, ServiceLine.skin_check)))  # type: ignore[arg-type]
    elif kind == "left" and active is not None:
        d.feed(left(active.eligibility_id if b else "elig-other", a, active.segment))  # type: ignore[arg-type]
    elif kind == "reply":
        intent = a
        extra: dict[str, object] = {}
        if intent is ReplyIntent.choose_slot:
            extra["chosen_slot_id"] = "slot-1"
        if intent is ReplyIntent.later and b:
            extra["snooze_until"] = d.now.date() + timedelta(days=int(b))  # type: ignore[call-overload]
        d.feed(
            ReplyReceived(
                reply_message_id="in-1",
                channel=Channel.sms,
                sequence_id=sid,
                intent=intent,  # type: ignore[arg-type]
                **extra,  # type: ignore[arg-type]
            )
        )
    elif kind in ("opt_out", "opt_in"):
        cls = OptedOut if kind == "opt_out" else OptedIn
        d.feed(cls(channel=a, scope=b, recorded_via=RecordedVia.staff))  # type: ignore[arg-type]
    elif kind == "booking":
        d.feed(
            BookingRequested(
                booking_request_id="br-1",
                slot_id="slot-1",
                slot_start=d.now + timedelta(days=2),
                service_line=ServiceLine.skin_check,
                provider_id=None,
                location_id=None,
                sequence_id=sid,
            )
        )
    elif kind == "snooze" and sid is not None:
        d.feed(SnoozeRequested(sequence_id=sid, until=d.now.date() + timedelta(days=int(a))))  # type: ignore[call-overload]
    elif kind == "raise":
        d.feed(
            EscalationRaised(
                escalation_id=f"esc-{a}",
                case_type=b,  # type: ignore[arg-type]
                severity=Severity.normal,
                summary="A fixed phrase for the test",
            )
        )
    elif kind == "resolve":
        d.feed(
            EscalationResolved(
                escalation_id=f"esc-{a}",
                outcome=Resolution.answered,
                resolved_by="staff-1",
                resume_outreach=bool(b),
            )
        )
    elif kind == "blocked" and d.commanded:
        last_sid, step, _ = d.commanded[-1]
        reason = a
        retry = (
            d.now + timedelta(hours=int(b))  # type: ignore[call-overload]
            if reason in (BlockReason.quiet_hours, BlockReason.frequency_cap)
            else None
        )
        if d.sequences[last_sid].steps_sent == step:
            d.retract(last_sid, step)
            d.feed(
                MessageBlocked(
                    sequence_id=last_sid,
                    step=step,
                    channel=Channel.sms,
                    reason=reason,  # type: ignore[arg-type]
                    retry_after=retry,
                )
            )
    elif kind == "staff":
        d.operate(
            {"pause": operators.pause, "resume": operators.resume, "stop": operators.stop_by_staff}[
                a
            ]
        )  # type: ignore[index]
    elif kind == "advance":
        d.advance(timedelta(hours=int(a)))  # type: ignore[call-overload]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(st.lists(actions, min_size=1, max_size=40))
def test_no_interleaving_sends_after_a_stop_or_breaks_the_rules(
    script: list[tuple[object, ...]],
) -> None:
    d = Checked()
    for action in script:
        run(d, action)
    d.advance(timedelta(days=40))  # let everything still pending play out
    assert d.violations == []
    times = sorted(at for _, _, at in d.commanded)
    for at in times:
        assert sum(1 for t in times if at - timedelta(days=1) < t <= at) <= d.rules.per_day
        assert sum(1 for t in times if at - timedelta(days=7) < t <= at) <= d.rules.per_week


def test_the_checker_flags_a_step_after_a_stop() -> None:
    d = Checked()
    d.feed(eligible())
    d.advance(timedelta(0))
    [(_, cmd)] = d.sends()
    d.feed(left(reason=LeftReason.booked))
    assert d.violations == []
    d.apply(Outcome(d.patient, events=[cmd]))  # as if the core commanded it again
    assert d.violations == ["a step after its sequence ended"]
