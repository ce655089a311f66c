"""The figures' definitions, computed from one patient's whole history.

An *episode* is one eligibility: one patient in one segment for one documented need. Its
outcome is derived here; reports and /metrics only add episodes up. Definitions (docs/metrics.md
says the same in words):

- messaged: at least one MessageSent for a sequence of the episode; the *first outreach* is the
  earliest of those.
- reached: at least one of those messages has a MessageDelivered (a send the provider accepted
  but never confirmed does not count).
- replied: at least one ReplyReceived for a sequence of the episode (matched by sequence_id, or
  by the message it answers). Opt-outs are OptedOut events and are counted apart.
- opted out: the patient opted out (any channel, any scope) within the attribution window after
  the episode's first outreach.
- clicked: a step's tracked booking link was opened (BookingLinkClicked). Shown, never the
  headline: a click is interest, and link previews open links too.
- rebooked: an AppointmentBooked that meets the need by the segmenter's own rule (the
  eligibility's ``rebooked_by``, else ``shared/rebooking.py``: a lapsed patient's any booking,
  cosmetic upkeep only that treatment, other needs their service line or one covering it),
  made within the attribution window after the first outreach. A booking made earlier, or that
  does not meet the need, is not attributed. When a booking fits several episodes of the
  patient, it goes to the one whose first outreach came last (last touch), so a visit is never
  counted twice.
- completed: a rebooking fulfilled as a visit: VisitCompleted for that appointment, or
  AppointmentKept. A no-show or a cancellation is rebooked but not completed.
- revenue recovered: the charges of those completed visits (the newest EHR version of each).

For pilot comparisons the same rules run from *assignment* (SequenceStarted, for both arms,
intent to treat) instead of the first message, because a holdout is never messaged; an episode
with no sequence (the previous weeks' usual process, a need a pilot held) is counted from its
eligibility.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.metrics.domain.history import EligibilityFacts, PatientHistory, SequenceFacts
from shared.events.common import ServiceLine
from shared.rebooking import closes, closing_lines

# Stored on every derived row: when a definition changes, rows of an older version are rebuilt.
# 2: rebooked follows the segmenter's rule (any booking for a lapsed patient); clicks; facts.
RULES_VERSION = 2


@dataclass(frozen=True)
class Attributed:
    """Bookings attributed to one episode from one anchor."""

    first_booked_at: datetime | None = None
    bookings: int = 0
    completed_visits: int = 0
    revenue_cents: int = 0


@dataclass(frozen=True)
class Episode:
    eligibility_id: str
    segment: str
    kind: str
    service_line: str
    eligible_at: datetime
    left_reason: str | None
    sequence_id: str | None
    workflow_key: str | None
    pilot_id: str | None
    arm: str | None
    started_at: datetime | None
    first_sent_at: datetime | None
    messages_sent: int
    first_delivered_at: datetime | None
    replied: bool
    opted_out: bool
    outcome: Attributed  # anchored at the first outreach message
    # Anchored at assignment (SequenceStarted), else at eligibility: pilot comparisons.
    assigned: Attributed
    clicked_at: datetime | None = None
    # The need's facts, for screening the weeks before a pilot by its cohort (shared/pilots.py).
    provider_id: str | None = None
    location_id: str | None = None
    urgency: str | None = None
    due_at: datetime | None = None
    cancellation_reason: str | None = None  # reason code, or "no_show"
    cancelled_by: str | None = None


@dataclass(frozen=True)
class ReplyRow:
    reply_id: str
    at: datetime
    intent: str
    barrier: str | None
    eligibility_id: str | None


@dataclass(frozen=True)
class OptOutRow:
    opt_out_id: str
    at: datetime
    channel: str | None
    scope: str
    eligibility_id: str | None


@dataclass(frozen=True)
class EscalationRow:
    escalation_id: str
    raised_at: datetime
    severity: str | None
    case_type: str | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    eligibility_id: str | None


@dataclass(frozen=True)
class Derived:
    episodes: list[Episode]
    replies: list[ReplyRow]
    opt_outs: list[OptOutRow]
    escalations: list[EscalationRow]


def derive(history: PatientHistory, window: timedelta) -> Derived:
    """Every derived row of one patient (episodes and the events attributed to them)."""
    by_elig = _sequences_by_eligibility(history)
    first_sent = {eid: _first_sent(history, sids) for eid, sids in by_elig.items()}
    started: dict[str, datetime | None] = {
        eid: min(
            (t for sid in by_elig.get(eid, []) if (t := history.sequences[sid].started_at)),
            default=elig.at,
        )
        for eid, elig in history.eligibilities.items()
    }
    outcome = _attribute(history, first_sent, window)
    assigned = _attribute(history, started, window)
    seq_to_elig = {sid: eid for eid, sids in by_elig.items() for sid in sids}
    episodes = [
        _episode(history, eid, elig, by_elig.get(eid, []), first_sent.get(eid), window, o, a)
        for eid, elig in sorted(history.eligibilities.items())
        for o, a in [(outcome.get(eid, Attributed()), assigned.get(eid, Attributed()))]
    ]
    replies = [
        ReplyRow(rid, r.at, r.intent.value, r.barrier.value if r.barrier else None, e)
        for rid, r in sorted(history.replies.items())
        for e in [seq_to_elig.get(_reply_sequence(history, r.sequence_id, r.in_reply_to) or "")]
    ]
    opt_outs = [
        OptOutRow(
            oid,
            o.at,
            o.channel.value if o.channel else None,
            o.scope.value,
            _last_touch(first_sent, o.at, window),
        )
        for oid, o in sorted(history.opt_outs.items())
    ]
    escalations = [
        EscalationRow(
            esc_id,
            e.raised_at,
            e.severity.value if e.severity else None,
            e.case_type.value if e.case_type else None,
            e.acknowledged_at,
            e.resolved_at,
            seq_to_elig.get(e.sequence_id or ""),
        )
        for esc_id, e in sorted(history.escalations.items())
        if e.raised_at is not None
    ]
    return Derived(episodes, replies, opt_outs, escalations)


def _sequences_by_eligibility(history: PatientHistory) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for sid, seq in history.sequences.items():
        if seq.eligibility_id is not None and seq.started_at is not None:
            out.setdefault(seq.eligibility_id, []).append(sid)
    for sids in out.values():
        sids.sort(key=lambda sid: (_started(history.sequences[sid]), sid))
    return out


def _started(seq: SequenceFacts) -> datetime:
    assert seq.started_at is not None
    return seq.started_at


def _first_sent(history: PatientHistory, sids: Iterable[str]) -> datetime | None:
    wanted = set(sids)
    return min(
        (m.sent_at for m in history.messages.values() if m.sequence_id in wanted and m.sent_at),
        default=None,
    )


def _reply_sequence(
    history: PatientHistory, sequence_id: str | None, in_reply_to: str | None
) -> str | None:
    if sequence_id is not None:
        return sequence_id
    message = history.messages.get(in_reply_to or "")
    return message.sequence_id if message else None


def _last_touch(anchors: dict[str, datetime | None], at: datetime, window: timedelta) -> str | None:
    """The episode whose anchor came last at or before ``at``, within the window."""
    fitting = [(t, eid) for eid, t in anchors.items() if t is not None and t <= at <= t + window]
    return max(fitting)[1] if fitting else None


def meets(elig: EligibilityFacts) -> frozenset[ServiceLine] | None:
    """The service lines whose booking meets this need (None: any): what the segmenter
    stamped on the eligibility, else the same rule with the default parameters."""
    if elig.rebooked_by is not None:
        return elig.rebooked_by.lines
    return closing_lines(elig.segment, elig.service_line)


def _attribute(
    history: PatientHistory, anchors: dict[str, datetime | None], window: timedelta
) -> dict[str, Attributed]:
    """Each booking goes to at most one episode: the last touch among those it meets."""
    lines = {eid: meets(e) for eid, e in history.eligibilities.items()}
    visits_of: dict[str, list[int]] = {}
    for v in history.visits.values():
        if v.appointment_id is not None:
            visits_of.setdefault(v.appointment_id, []).append(v.charge_cents)
    out: dict[str, Attributed] = {}
    for appointment_id, booking in sorted(history.bookings.items()):
        if booking.booked_at is None or booking.service_line is None:
            continue
        line = booking.service_line
        fitting = {
            eid: t for eid, t in anchors.items() if eid in lines and closes(lines[eid], line)
        }
        eid = _last_touch(fitting, booking.booked_at, window)
        if eid is None:
            continue
        charges = visits_of.get(appointment_id)
        done = charges is not None or booking.kept_at is not None
        prev = out.get(eid, Attributed())
        first = booking.booked_at
        out[eid] = Attributed(
            first_booked_at=min(prev.first_booked_at or first, first),
            bookings=prev.bookings + 1,
            completed_visits=prev.completed_visits + (1 if done else 0),
            revenue_cents=prev.revenue_cents + sum(charges or ()),
        )
    return out


def _episode(
    history: PatientHistory,
    eid: str,
    elig: EligibilityFacts,
    sids: list[str],
    first_sent_at: datetime | None,
    window: timedelta,
    outcome: Attributed,
    assigned: Attributed,
) -> Episode:
    primary = history.sequences[sids[0]] if sids else None
    wanted = set(sids)
    messages = [m for m in history.messages.values() if m.sequence_id in wanted]
    delivered = [m.delivered_at for m in messages if m.delivered_at is not None]
    replied = any(
        _reply_sequence(history, r.sequence_id, r.in_reply_to) in wanted
        for r in history.replies.values()
    )
    opted_out = first_sent_at is not None and any(
        first_sent_at <= o.at <= first_sent_at + window for o in history.opt_outs.values()
    )
    clicks = [c.at for c in history.clicks.values() if c.sequence_id in wanted]
    missed = elig.missed
    return Episode(
        eligibility_id=eid,
        segment=elig.segment.value,
        kind=elig.kind.value,
        service_line=elig.service_line.value,
        eligible_at=elig.at,
        left_reason=elig.left_reason,
        sequence_id=sids[0] if sids else None,
        workflow_key=primary.workflow_key if primary else None,
        pilot_id=primary.pilot_id if primary else None,
        arm=primary.arm.value if primary and primary.arm else None,
        started_at=primary.started_at if primary else None,
        first_sent_at=first_sent_at,
        messages_sent=sum(1 for m in messages if m.sent_at is not None),
        first_delivered_at=min(delivered, default=None),
        replied=replied,
        opted_out=opted_out,
        outcome=outcome,
        assigned=assigned,
        clicked_at=min(clicks, default=None),
        provider_id=elig.provider_id,
        location_id=elig.location_id,
        urgency=elig.urgency.value if elig.urgency else None,
        due_at=elig.due_at,
        cancellation_reason=missed.reason_code if missed else None,
        cancelled_by=None if missed is None or missed.no_show else missed.cancelled_by.value,
    )
