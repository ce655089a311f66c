"""The fault run's invariants, checked on what the stack recorded (pure: no I/O).

``ChaosState`` is what ``revisit.chaos.state`` reads from every service's schema, the broker's
dead-letter topics, the sandbox provider's record and the consent ledger, as plain rows. Each
invariant returns how many things it checked and one line per violation (opaque keys only).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY, WEEK = timedelta(days=1), timedelta(days=7)


@dataclass(frozen=True)
class EhrEvent:
    event_id: str
    event_type: str | None  # None: accepted by ingest but never seen on the topic


@dataclass(frozen=True)
class Send:
    """One message the (sandbox) provider took, joined with its queue row."""

    message_id: str
    patient_key: str
    kind: str  # step | reply | offer (a freed slot offered: outreach, like a step)
    channel: str
    sequence_id: str | None
    step: int | None
    reply_kind: str | None
    sent_at: datetime  # the controlled clock when the provider took it
    decided_at: datetime | None  # database wall clock of the send decision (the lease)


@dataclass(frozen=True)
class ConsentChange:
    patient_key: str
    channel: str | None  # None: every channel
    change: str  # opted_out | opted_in
    applied: bool
    recorded_at: datetime  # database wall clock of the change


@dataclass(frozen=True)
class Policy:
    """A clinic's allowed hours and caps (the sequencer's effective rules)."""

    zone: str
    start: time
    end: time
    per_day: int
    per_week: int


@dataclass(frozen=True)
class RedFlag:
    message_id: str
    patient_key: str
    escalation_id: str  # the case the messenger raises for it (deterministic)


@dataclass(frozen=True)
class DeadLetter:
    id: str
    value: bytes


@dataclass
class ChaosState:
    accepted: list[EhrEvent] = field(default_factory=list)
    # consumer -> the event types it must see (None: every type)
    consumers: dict[str, frozenset[str] | None] = field(default_factory=dict)
    consumed: set[tuple[str, str]] = field(default_factory=set)  # (consumer, event_id)
    sends: list[Send] = field(default_factory=list)
    consent: list[ConsentChange] = field(default_factory=list)
    policies: dict[str, Policy] = field(default_factory=dict)  # clinic -> policy
    patient_zones: dict[str, str] = field(default_factory=dict)
    red_flags: list[RedFlag] = field(default_factory=list)
    cases: set[str] = field(default_factory=set)  # escalation ids with a red_flag case
    paged: set[str] = field(default_factory=set)  # escalation ids with a delivered page
    dead_letters: list[DeadLetter] = field(default_factory=list)
    deliberate: set[bytes] = field(default_factory=set)  # bad inputs sent on purpose
    always_allowed_replies: frozenset[str] = frozenset()  # e.g. the STOP confirmation
    stuck: dict[str, int] = field(default_factory=dict)  # what is left in flight, by kind


@dataclass(frozen=True)
class Result:
    name: str
    checked: int
    violations: list[str]

    def line(self) -> str:
        return f"chaos_{self.name}: {len(self.violations)} violations ({self.checked} checked)"


def every_accepted_event_reached_every_consumer(state: ChaosState) -> Result:
    violations, checked = [], 0
    for event in state.accepted:
        if event.event_type is None:
            violations.append(f"{event.event_id}: accepted but never published")
            continue
        for consumer, types in sorted(state.consumers.items()):
            if types is not None and event.event_type not in types:
                continue
            checked += 1
            if (consumer, event.event_id) not in state.consumed:
                violations.append(f"{event.event_id} ({event.event_type}) never reached {consumer}")
    return Result("ehr_reached_every_consumer_once", checked, violations)


def no_step_sent_twice(state: ChaosState) -> Result:
    by_step: dict[tuple[str, str, int], list[Send]] = defaultdict(list)
    for send in state.sends:
        if send.kind == "step" and send.sequence_id is not None and send.step is not None:
            by_step[(send.patient_key, send.sequence_id, send.step)].append(send)
    violations = [
        f"{pk} {seq} step {step}: sent {len(found)} times"
        for (pk, seq, step), found in sorted(by_step.items())
        if len(found) > 1
    ]
    return Result("no_step_sent_twice", len(by_step), violations)


def no_send_after_an_opt_out(state: ChaosState) -> Result:
    """A message decided after the patient's opt-out committed must never reach them: the
    decision's wall-clock time against the opt-out's, and no opt-in in between."""
    changes: dict[str, list[ConsentChange]] = defaultdict(list)
    for change in state.consent:
        if change.applied:
            changes[change.patient_key].append(change)
    violations, checked = [], 0
    for send in state.sends:
        if send.kind == "reply" and (send.reply_kind or "") in state.always_allowed_replies:
            continue
        if send.decided_at is None:
            continue
        checked += 1
        relevant = sorted(
            (c for c in changes.get(send.patient_key, ()) if c.channel in (None, send.channel)),
            key=lambda c: c.recorded_at,
        )
        before = [c for c in relevant if c.recorded_at < send.decided_at]
        if before and before[-1].change == "opted_out":
            violations.append(
                f"{send.patient_key} {send.message_id}: {send.channel} sent after an opt-out"
            )
    return Result("no_send_after_opt_out", checked, violations)


def _zone(state: ChaosState, send: Send, policy: Policy) -> ZoneInfo:
    return ZoneInfo(state.patient_zones.get(send.patient_key) or policy.zone)


OUTREACH = frozenset({"step", "offer"})  # what the hours and the caps hold


def _steps_by_patient(state: ChaosState) -> dict[str, list[Send]]:
    found: dict[str, list[Send]] = defaultdict(list)
    for send in state.sends:
        if send.kind in OUTREACH:
            found[send.patient_key].append(send)
    return found


def no_send_outside_allowed_hours(state: ChaosState) -> Result:
    violations, checked = [], 0
    for send in state.sends:
        policy = state.policies.get(send.patient_key.split(":", 1)[0])
        if send.kind not in OUTREACH or policy is None:
            continue
        checked += 1
        local = send.sent_at.astimezone(_zone(state, send, policy)).time()
        if not policy.start <= local < policy.end:
            violations.append(
                f"{send.patient_key} {send.message_id}: sent at {local:%H:%M} local, "
                f"allowed {policy.start:%H:%M}-{policy.end:%H:%M}"
            )
    return Result("no_send_outside_allowed_hours", checked, violations)


def caps_held(state: ChaosState) -> Result:
    violations, checked = [], 0
    for patient, sends in sorted(_steps_by_patient(state).items()):
        policy = state.policies.get(patient.split(":", 1)[0])
        if policy is None:
            continue
        checked += 1
        times = sorted(s.sent_at for s in sends)
        for i, at in enumerate(times):
            day = sum(1 for t in times[i:] if t - at < DAY)
            week = sum(1 for t in times[i:] if t - at < WEEK)
            if day > policy.per_day or week > policy.per_week:
                violations.append(
                    f"{patient}: {day} in 24 h / {week} in 7 days from {at.isoformat()} "
                    f"(caps {policy.per_day} / {policy.per_week})"
                )
                break
    return Result("caps_held", checked, violations)


def every_red_flag_paged(state: ChaosState) -> Result:
    violations = []
    for flag in state.red_flags:
        if flag.escalation_id not in state.cases:
            violations.append(f"{flag.patient_key} {flag.message_id}: red flag with no case")
        elif flag.escalation_id not in state.paged:
            violations.append(f"{flag.patient_key} {flag.message_id}: red flag case never paged")
    return Result("every_red_flag_paged", len(state.red_flags), violations)


def no_unexpected_dead_letter(state: ChaosState) -> Result:
    violations = [
        f"{letter.id}: dead-lettered but not a deliberately bad input"
        for letter in state.dead_letters
        if letter.value not in state.deliberate
    ]
    return Result("no_unexpected_dead_letter", len(state.dead_letters), violations)


def every_bad_input_dead_lettered(state: ChaosState) -> Result:
    """The other half of the DLQ promise: a bad message is kept, with its bytes, not lost."""
    kept = {letter.value for letter in state.dead_letters}
    violations = [
        f"a deliberately bad input of {len(value)} bytes was never dead-lettered"
        for value in sorted(state.deliberate)
        if value not in kept
    ]
    return Result("every_bad_input_dead_lettered", len(state.deliberate), violations)


def nothing_left_stuck(state: ChaosState) -> Result:
    violations = [f"{n} {what}" for what, n in sorted(state.stuck.items()) if n]
    return Result("nothing_left_in_flight", len(state.stuck), violations)


INVARIANTS: Sequence[Callable[[ChaosState], Result]] = (
    every_accepted_event_reached_every_consumer,
    no_step_sent_twice,
    no_send_after_an_opt_out,
    no_send_outside_allowed_hours,
    caps_held,
    every_red_flag_paged,
    no_unexpected_dead_letter,
    every_bad_input_dead_lettered,
    nothing_left_stuck,
)


def check(state: ChaosState) -> list[Result]:
    return [invariant(state) for invariant in INVARIANTS]


def report(results: Iterable[Result], faults: Mapping[str, int]) -> list[str]:
    """The lines ``make chaos`` prints: one per invariant, then the faults injected."""
    lines = [r.line() for r in results]
    lines += [f"chaos_FAULTS: {kind} x{n}" for kind, n in sorted(faults.items())]
    return lines
