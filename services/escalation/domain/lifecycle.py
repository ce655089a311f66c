"""A case's life: raised -> paged (again and again until someone answers) -> acknowledged ->
resolved. Each function takes the case, what happened and "now", and returns a ``Decision``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from services.escalation.domain.model import (
    SYSTEM,
    Action,
    AuditEntry,
    Case,
    CaseConflict,
    CaseState,
    Decision,
    PageOrder,
    Target,
)
from services.escalation.domain.rotations import Rotation, escalation_chain
from services.escalation.domain.routing import Route
from services.escalation.domain.sla import AckPolicy
from shared.events.envelope import Payload
from shared.events.escalations import EscalationAcknowledged, EscalationResolved, Outcome

Rotations = Mapping[str, Rotation]

# Whether the patient's outreach sequence continues after the case closes, unless the
# responder says otherwise: an answered question or a case needing nothing lets the recall go
# on; a booking ends it anyway, and a referral hands the patient to someone else.
RESUME_BY_DEFAULT: Mapping[Outcome, bool] = {
    Outcome.answered: True,
    Outcome.no_action: True,
    Outcome.booked: False,
    Outcome.referred: False,
}


def on_raised(
    case: Case, found: Route | None, rotations: Rotations, now: datetime, policy: AckPolicy
) -> Decision:
    raised = AuditEntry("raised", SYSTEM, {"case_type": case.case_type, "severity": case.severity})
    if found is None:
        return _nobody(case, now, policy, (raised, AuditEntry("unrouted", SYSTEM)))
    case = replace(case, rule_id=found.rule_id, rotation_id=found.rotation_id)
    routed = AuditEntry(
        "routed", SYSTEM, {"rule_id": found.rule_id, "rotation_id": found.rotation_id}
    )
    if found.deferred(now):
        held = replace(case, state=CaseState.queued, page_at=found.page_at)
        at = found.page_at.isoformat()
        return Decision(
            held,
            page_timer_at=found.page_at,
            audit=(raised, routed, AuditEntry("held_for_hours", SYSTEM, {"page_at": at})),
        )
    return _page(case, rotations, now, policy, 0, (raised, routed))


def on_page_due(case: Case, rotations: Rotations, now: datetime, policy: AckPolicy) -> Decision:
    """A first page held for business hours: the clinic is open now."""
    if case.state is not CaseState.queued or case.attempt > 0:
        return Decision(case, changed=False)
    return _page(case, rotations, now, policy, 0, ())


def on_ack_due(
    case: Case,
    attempt: int,
    rotations: Rotations,
    now: datetime,
    policy: AckPolicy,
    reroute: Route | None = None,
) -> Decision:
    """The acknowledgement SLA ran out: page the next person in the chain.

    A timer from an earlier attempt (the case was reassigned since) is stale and does nothing.
    A case nobody could be paged for is retried, and re-routed if it had no rotation.
    """
    if case.state not in (CaseState.queued, CaseState.paging) or case.attempt != attempt:
        return Decision(case, changed=False)
    if case.attempt == 0:
        if case.rotation_id is None and reroute is not None:
            case = replace(case, rule_id=reroute.rule_id, rotation_id=reroute.rotation_id)
        return _page(case, rotations, now, policy, 0, ())
    expired = AuditEntry(
        "sla_expired", SYSTEM, {"attempt": case.attempt, "responder_id": case.responder_id}
    )
    return _page(case, rotations, now, policy, case.step + 1, (expired,))


def acknowledge(case: Case, by: str, now: datetime) -> Decision:
    if case.state is CaseState.resolved:
        raise CaseConflict("the case is already resolved")
    if case.state is CaseState.acknowledged:
        if case.acknowledged_by == by:
            return Decision(case, changed=False)
        raise CaseConflict("the case is already acknowledged by another responder; reassign it")
    acked = replace(
        case,
        state=CaseState.acknowledged,
        acknowledged_by=by,
        acknowledged_at=now,
        ack_due_at=None,
        page_at=None,
    )
    return Decision(
        acked,
        events=(EscalationAcknowledged(escalation_id=case.escalation_id, responder_id=by),),
        lifecycle=Action.acknowledge,
        cancel_timers=True,
        audit=(AuditEntry("acknowledged", by, {"attempt": case.attempt}),),
    )


def resolve(
    case: Case, by: str, outcome: Outcome, resume: bool | None, now: datetime, has_note: bool
) -> Decision:
    if case.state is CaseState.resolved:
        raise CaseConflict("the case is already resolved")
    resume_outreach = RESUME_BY_DEFAULT[outcome] if resume is None else resume
    events: list[Payload] = []
    if case.state is not CaseState.acknowledged:
        # Closing a case takes ownership of it: the lifecycle always shows who acknowledged.
        events.append(EscalationAcknowledged(escalation_id=case.escalation_id, responder_id=by))
    events.append(
        EscalationResolved(
            escalation_id=case.escalation_id,
            outcome=outcome,
            resolved_by=by,
            resume_outreach=resume_outreach,
        )
    )
    closed = replace(
        case,
        state=CaseState.resolved,
        acknowledged_by=case.acknowledged_by or by,
        acknowledged_at=case.acknowledged_at or now,
        resolved_by=by,
        resolved_at=now,
        outcome=outcome,
        resume_outreach=resume_outreach,
        ack_due_at=None,
        page_at=None,
    )
    detail = {"outcome": outcome, "resume_outreach": resume_outreach, "note": has_note}
    return Decision(
        closed,
        events=tuple(events),
        lifecycle=Action.resolve,
        cancel_timers=True,
        audit=(AuditEntry("resolved", by, detail),),
    )


def reassign(
    case: Case,
    by: str,
    rotations: Rotations,
    now: datetime,
    policy: AckPolicy,
    *,
    responder_id: str | None = None,
    rotation_id: str | None = None,
) -> Decision:
    """Page someone else now: a named responder, or whoever is on call in another rotation."""
    if case.state is CaseState.resolved:
        raise CaseConflict("the case is already resolved")
    attempt = case.attempt + 1
    if attempt > policy.max_attempts:
        raise CaseConflict("the case has reached the page limit; acknowledge or resolve it")
    rotation = rotation_id or case.rotation_id
    if rotation is None:
        raise CaseConflict("the case has no rotation yet; name one")
    if rotation not in rotations:
        raise CaseConflict("no such rotation in this clinic")
    if responder_id is None:
        chain = escalation_chain(rotations, rotation, now)
        if not chain:
            raise CaseConflict("nobody is on call in that rotation")
        responder_id = chain[0].responder_id
    target = Target(rotation, responder_id)
    due = policy.due(case.severity, now)
    step = 0 if rotation_id else case.step
    moved = replace(
        case,
        state=CaseState.paging,
        rotation_id=rotation,
        responder_id=responder_id,
        attempt=attempt,
        step=step,
        ack_due_at=due,
        page_at=None,
        acknowledged_by=None,
        acknowledged_at=None,
        exhausted=False,
    )
    detail = {
        "from_responder_id": case.responder_id,
        "responder_id": responder_id,
        "rotation_id": rotation,
        "attempt": attempt,
    }
    return Decision(
        moved,
        page=PageOrder(attempt, target),
        ack_timer_at=due,
        cancel_timers=True,
        audit=(AuditEntry("reassigned", by, detail),),
    )


def _page(
    case: Case,
    rotations: Rotations,
    now: datetime,
    policy: AckPolicy,
    step: int,
    audit: tuple[AuditEntry, ...],
) -> Decision:
    chain = escalation_chain(rotations, case.rotation_id, now) if case.rotation_id else []
    if not chain:
        return _nobody(case, now, policy, audit)
    attempt = case.attempt + 1
    if attempt > policy.max_attempts:
        done = replace(case, exhausted=True, ack_due_at=None)
        limit = AuditEntry("pages_exhausted", SYSTEM, {"attempts": case.attempt})
        return Decision(done, audit=(*audit, limit))
    target = chain[step % len(chain)]
    due = policy.due(case.severity, now)
    paged = replace(
        case,
        state=CaseState.paging,
        responder_id=target.responder_id,
        attempt=attempt,
        step=step,
        ack_due_at=due,
        page_at=None,
    )
    order = AuditEntry(
        "page_ordered",
        SYSTEM,
        {
            "attempt": attempt,
            "rotation_id": target.rotation_id,
            "responder_id": target.responder_id,
            "round": step // len(chain) + 1,
        },
    )
    return Decision(paged, page=PageOrder(attempt, target), ack_timer_at=due, audit=(*audit, order))


def _nobody(
    case: Case, now: datetime, policy: AckPolicy, audit: tuple[AuditEntry, ...]
) -> Decision:
    """Nobody to page (no rule, empty rotation): keep it queued and try again after the SLA."""
    due = policy.due(case.severity, now)
    first = case.ack_due_at is None  # audit the first miss, not every retry
    entries = (*audit, AuditEntry("nobody_on_call", SYSTEM)) if first else audit
    waiting = replace(case, state=CaseState.queued, ack_due_at=due, page_at=None)
    return Decision(waiting, ack_timer_at=due, audit=entries)
