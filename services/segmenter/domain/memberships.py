"""Segment memberships: what the patient is in, which one is primary, and what to emit.

A membership's status is a function of its finding's status now and of the overlap rule, never
of the order in which events arrived:

- ``upcoming``: found, not due yet (nothing emitted);
- ``held``: due, but another need is primary or service recovery comes first (nothing emitted);
- ``open``: the one primary need; PatientBecameEligible was emitted;
- ``closed``: met, withdrawn or expired (PatientLeftSegment emitted if it had been open).

The primary is the due need with the lowest rank: clinical before cosmetic, then urgency, then
the clinic's segment priority, then the earliest due, then the id. A need that becomes primary
again after being held or closed is emitted under a new eligibility id (``<need id>-<n>``), so an
eligibility id is never reused once it has been left.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.segmenter.domain.findings import Ending, Finding, Status, eligible_event
from services.segmenter.domain.params import ClinicParams
from shared.events import Payload
from shared.events.common import Segment, SegmentKind, ServiceLine, SourceRecord
from shared.events.eligibility import LeftReason, PatientLeftSegment

HOLD_RECOVERY = "held for service recovery: a person contacts the patient first"
HOLD_ONBOARDING = "held while the practice's history loads: outreach starts once it is all in"


def held_behind(segment: Segment | str) -> str:
    value = segment.value if isinstance(segment, Segment) else segment
    return f"held while {value} is the primary segment"


class MembershipStatus(StrEnum):
    upcoming = "upcoming"
    held = "held"
    open = "open"
    closed = "closed"


LIVE = (MembershipStatus.upcoming, MembershipStatus.held, MembershipStatus.open)


@dataclass(frozen=True)
class Membership:
    need_id: str
    segment: Segment
    kind: SegmentKind
    service_line: ServiceLine
    source: SourceRecord
    status: MembershipStatus
    surface_at: datetime
    expires_at: datetime | None
    rank: int
    cosmetic: bool
    fields: Mapping[str, Any] = field(default_factory=dict)  # PatientBecameEligible sans id
    emissions: int = 0
    eligibility_id: str | None = None  # the id last emitted
    hold_reason: str | None = None
    closed_reason: LeftReason | None = None
    closed_at: datetime | None = None
    opened_at: datetime | None = None
    # Where the need came from on the wire (the causing event's trace headers and ids), so that
    # an eligibility emitted later, by the sweep, continues the same trace. Set by the shell.
    origin: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def live(self) -> bool:
        return self.status in LIVE

    @property
    def order(self) -> tuple[int, datetime, str]:
        return (self.rank, self.surface_at, self.need_id)


def rank(finding: Finding, params: ClinicParams) -> int:
    cosmetic = finding.needs_marketing_consent
    urgency = 2 - finding.urgency.rank
    return (
        (1000 if cosmetic else 0)
        + urgency * 100
        + params.general.priority.index(finding.segment) * 10
    )


def next_eligibility_id(m: Membership) -> str:
    return m.need_id if m.emissions == 0 else f"{m.need_id}-{m.emissions + 1}"


def next_transition(memberships: Mapping[str, Membership]) -> datetime | None:
    """When time alone will next change one of these memberships (the sweep's index)."""
    times = []
    for m in memberships.values():
        if m.status is MembershipStatus.upcoming:
            times.append(m.surface_at)
        if m.live and m.expires_at is not None:
            times.append(m.expires_at)
    return min(times) if times else None


@dataclass
class _Moves:
    lefts: list[Payload] = field(default_factory=list)
    opens: list[Payload] = field(default_factory=list)

    def leave(self, m: Membership, reason: LeftReason, by: SourceRecord | None) -> None:
        assert m.eligibility_id is not None
        self.lefts.append(
            PatientLeftSegment(
                eligibility_id=m.eligibility_id,
                segment=m.segment,
                kind=m.kind,
                service_line=m.service_line,
                reason=reason,
                source_record=by,
            )
        )


def _refresh(
    m: Membership, f: Finding, params: ClinicParams, status: MembershipStatus
) -> Membership:
    hold = None if status is not MembershipStatus.held else m.hold_reason
    new_rank = rank(f, params)
    if (
        m.status is status
        and m.hold_reason == hold
        and m.closed_reason is None
        and m.rank == new_rank
        and m.surface_at == f.surface_at
        and m.expires_at == f.expires_at
        and m.service_line is f.service_line
        and m.fields == f.fields
    ):
        return m  # the common case: nothing about the need changed
    return replace(
        m,
        service_line=f.service_line,
        status=status,
        surface_at=f.surface_at,
        expires_at=f.expires_at,
        rank=new_rank,
        cosmetic=f.needs_marketing_consent,
        fields=f.fields,
        hold_reason=hold,
        closed_reason=None,
        closed_at=None,
    )


def _new(f: Finding, params: ClinicParams, status: MembershipStatus) -> Membership:
    return Membership(
        need_id=f.need_id,
        segment=f.segment,
        kind=f.kind,
        service_line=f.service_line,
        source=f.source,
        status=status,
        surface_at=f.surface_at,
        expires_at=f.expires_at,
        rank=rank(f, params),
        cosmetic=f.needs_marketing_consent,
        fields=f.fields,
    )


def _close(m: Membership, ending: Ending, now: datetime, moves: _Moves) -> Membership:
    if m.status is MembershipStatus.open:
        moves.leave(m, ending.reason, ending.by)
    return replace(
        m,
        status=MembershipStatus.closed,
        closed_reason=ending.reason,
        closed_at=now,
        hold_reason=None,
    )


WINDOW_CLOSED = Ending(LeftReason.window_closed, None, "its window closed")
SUPERSEDED = Ending(LeftReason.superseded, None, "it is no longer due")
TURNED_OFF = Ending(LeftReason.superseded, None, "the clinic turned this segment off")


@dataclass(frozen=True)
class Context:
    """What reconciling needs besides the memberships and findings."""

    now: datetime
    params: ClinicParams
    gone: Any  # (Membership) -> Ending: why a need no rule finds any more has ended
    patient_gone: Ending | None = None  # deceased or inactive: everything closes
    recovery_hold: bool = False
    onboarding_hold: bool = False  # the clinic's history is loading: nothing new opens


def reconcile(
    memberships: Mapping[str, Membership], findings: list[Finding], ctx: Context
) -> tuple[dict[str, Membership], list[Payload]]:
    """New memberships and the PatientLeftSegment / PatientBecameEligible to emit (lefts first)."""
    now, params = ctx.now, ctx.params
    moves = _Moves()
    found = {f.need_id: f for f in findings}
    out: dict[str, Membership] = {}
    for need_id in sorted(memberships):
        m = memberships[need_id]
        f = found.get(need_id)
        status = f.status(now) if f is not None else None
        if ctx.patient_gone is not None:
            out[need_id] = _close(m, ctx.patient_gone, now, moves) if m.live else m
        elif not m.live:
            if status is Status.due or status is Status.upcoming:
                assert f is not None
                reopened = (
                    MembershipStatus.held if status is Status.due else MembershipStatus.upcoming
                )
                out[need_id] = _refresh(m, f, params, reopened)
            else:
                out[need_id] = m
        elif not params.rule(m.segment).enabled:
            out[need_id] = _close(m, TURNED_OFF, now, moves)
        elif f is None:
            out[need_id] = _close(m, ctx.gone(m), now, moves)
        elif status is Status.ended:
            assert f.ended is not None
            out[need_id] = _close(m, f.ended, now, moves)
        elif status is Status.expired:
            out[need_id] = _close(m, WINDOW_CLOSED, now, moves)
        elif status is Status.upcoming:
            if m.status is MembershipStatus.open:
                ending = f.renewed or SUPERSEDED
                moves.leave(m, ending.reason, ending.by)
            out[need_id] = _refresh(m, f, params, MembershipStatus.upcoming)
        else:
            keep = (
                MembershipStatus.open
                if m.status is MembershipStatus.open
                else MembershipStatus.held
            )
            out[need_id] = _refresh(m, f, params, keep)
    if ctx.patient_gone is None:
        for f in sorted(findings, key=lambda f: f.need_id):
            if f.need_id in out:
                continue
            status = f.status(now)
            if status is Status.due:
                out[f.need_id] = _new(f, params, MembershipStatus.held)
            elif status is Status.upcoming:
                out[f.need_id] = _new(f, params, MembershipStatus.upcoming)
    _choose_primary(out, ctx, moves)
    return out, [*moves.lefts, *moves.opens]


def _choose_primary(out: dict[str, Membership], ctx: Context, moves: _Moves) -> None:
    due = sorted(
        (m for m in out.values() if m.status in (MembershipStatus.held, MembershipStatus.open)),
        key=lambda m: m.order,
    )
    if not due:
        return
    if ctx.recovery_hold:
        for m in due:
            if m.status is MembershipStatus.open:
                moves.leave(m, LeftReason.service_recovery, None)
            if m.status is not MembershipStatus.held or m.hold_reason != HOLD_RECOVERY:
                out[m.need_id] = replace(m, status=MembershipStatus.held, hold_reason=HOLD_RECOVERY)
        return
    if ctx.onboarding_hold:
        # An event read while the history loads may be years old, or the patient's later
        # records not in yet: nothing opens until it is all in (what is open stays open).
        for m in due:
            if m.status is MembershipStatus.held and m.hold_reason != HOLD_ONBOARDING:
                out[m.need_id] = replace(m, hold_reason=HOLD_ONBOARDING)
        return
    best = due[0]
    behind = held_behind(best.segment)
    for m in due[1:]:
        if m.status is MembershipStatus.open:
            moves.leave(m, LeftReason.superseded, best.source)
        if m.status is not MembershipStatus.held or m.hold_reason != behind:
            out[m.need_id] = replace(m, status=MembershipStatus.held, hold_reason=behind)
    if best.status is not MembershipStatus.open:
        eligibility_id = next_eligibility_id(best)
        moves.opens.append(eligible_event(dict(best.fields), eligibility_id))
        best = replace(
            best,
            status=MembershipStatus.open,
            emissions=best.emissions + 1,
            eligibility_id=eligibility_id,
            opened_at=best.opened_at or ctx.now,
        )
    if best.hold_reason is not None:
        best = replace(best, hold_reason=None)
    out[best.need_id] = best
