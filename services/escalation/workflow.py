"""The shell around the pure core: load a case and its clinic's set-up, decide, then save the
case, stage its events, (re)schedule its timers, queue its page deliveries and write the audit
trail, all in the caller's ONE transaction. No network I/O happens here: deliveries are rows
that the dispatcher works off after the transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.escalation import domain
from services.escalation.domain import AckPolicy, Action, Case, CaseState, Decision, Rotation
from services.escalation.fallback import fallback_for, instead_of_sandbox
from services.escalation.notifiers import SANDBOX, NotifierConfig
from services.escalation.repository import audit, cases, notifiers, pages, setup
from services.escalation.settings import EscalationSettings
from shared.clock import Clock, SystemClock
from shared.events import new_event
from shared.events.envelope import Envelope, Payload
from shared.events.escalations import EscalationRaised
from shared.runtime import Runtime
from shared.timers import Timer

ACK_TIMER = "escalation.ack_due"
PAGE_TIMER = "escalation.page_due"


class CaseNotFound(Exception):
    """No such case in the caller's clinics (the same answer whether it exists elsewhere)."""


@dataclass
class Escalation:
    """The service's wiring, built once per process in the composition root."""

    runtime: Runtime
    config: EscalationSettings
    wall: Clock = field(default_factory=SystemClock)  # delivery back-off only; see settings
    wake_dispatcher: Callable[[], None] = lambda: None

    @property
    def clock(self) -> Clock:
        return self.runtime.clock

    @property
    def fallback(self) -> NotifierConfig | None:
        """Where a page that would reach only the sandbox goes (production only)."""
        return fallback_for(self.runtime, self.config)

    @property
    def policy(self) -> AckPolicy:
        return self.config.ack_policy()

    def case_url(self, escalation_id: str) -> str | None:
        base = self.config.public_url.rstrip("/")
        return f"{base}/cases/{escalation_id}" if base else None


@dataclass(frozen=True)
class Setup:
    clinic: setup.Clinic
    rotations: dict[str, Rotation]
    policy: AckPolicy


async def load_setup(
    session: AsyncSession, esc: Escalation, clinic_id: str, now: datetime
) -> Setup:
    """The clinic's hours, SLAs and rotations, seeding its defaults the first time."""
    time_zone = esc.runtime.settings.revisit_default_time_zone
    await setup.ensure_clinic(session, clinic_id, time_zone)
    clinic = await setup.load_clinic(session, clinic_id)
    assert clinic is not None
    rotations = await setup.load_rotations(session, clinic_id, overrides_after=now)
    return Setup(clinic, rotations, esc.policy.with_overrides(clinic.ack_minutes))


def envelopes(case: Case, payloads: tuple[Payload, ...], now: datetime) -> list[Envelope[Any]]:
    return [
        new_event(
            payload,
            clinic_id=case.clinic_id,
            patient_key=case.patient_key,
            occurred_at=now,
            correlation_id=case.correlation_id,
            causation_id=case.raised_event_id,
        )
        for payload in payloads
    ]


async def apply(
    session: AsyncSession,
    esc: Escalation,
    ctx: Setup,
    decision: Decision,
    now: datetime,
    *,
    headers: dict[str, str] | None = None,
) -> None:
    if not decision.changed:
        return
    case = decision.case
    runtime = esc.runtime
    await cases.save(session, case, now)
    staged = envelopes(case, decision.events, now)
    if staged:
        await runtime.outbox.stage(session, staged, headers=headers)
    if decision.cancel_timers:
        await runtime.timers.cancel(session, ACK_TIMER, case.escalation_id)
        await runtime.timers.cancel(session, PAGE_TIMER, case.escalation_id)
    for kind, due in ((ACK_TIMER, decision.ack_timer_at), (PAGE_TIMER, decision.page_timer_at)):
        if due is not None:
            await runtime.timers.schedule(
                session,
                kind,
                case.escalation_id,
                due,
                patient_key=case.patient_key,
                payload={"attempt": case.attempt},
            )
    wall_now = esc.wall.now()
    if decision.page is not None:
        target = decision.page.target
        rotation = ctx.rotations.get(target.rotation_id)
        wanted = (rotation.notifier_ids if rotation else ()) or ctx.clinic.default_notifiers
        configs = await notifiers.load(session, case.clinic_id, wanted) or [SANDBOX]
        configs = await instead_of_sandbox(session, esc.fallback, case, configs)
        member = rotation.member(target.responder_id) if rotation else None
        await pages.create_triggers(
            session,
            case,
            decision.page,
            configs,
            email=member.email if member else None,
            case_url=esc.case_url(case.escalation_id),
            now=now,
            wall_now=wall_now,
        )
    if decision.lifecycle is not None:
        by = case.resolved_by if decision.lifecycle is Action.resolve else case.acknowledged_by
        await pages.create_lifecycle(
            session,
            case,
            decision.lifecycle,
            by or domain.SYSTEM,
            case_url=esc.case_url(case.escalation_id),
            now=now,
            wall_now=wall_now,
        )
    await audit.add(session, case.clinic_id, case.escalation_id, now, decision.audit)


# --- what the consumer and the timers do -------------------------------------------------------


async def raise_case(
    session: AsyncSession, esc: Escalation, event: Envelope[Any], headers: dict[str, str]
) -> bool:
    """Open, route and (usually) page a raised case; False if it was already known."""
    p = event.payload
    assert isinstance(p, EscalationRaised)
    now = esc.clock.now()
    case = Case(
        escalation_id=p.escalation_id,
        clinic_id=event.clinic_id,
        patient_key=event.patient_key,
        case_type=p.case_type,
        severity=p.severity,
        summary=p.summary,
        raised_at=event.occurred_at,
        raised_event_id=event.event_id,
        correlation_id=event.correlation_id or event.event_id,
    )
    extra = {
        "source_message_id": p.source_message_id,
        "sequence_id": p.sequence_id,
        "service_line": p.service_line.value if p.service_line else None,
        "channel": p.channel.value if p.channel else None,
    }
    if not await cases.insert_raised(session, case, extra):
        return False
    ctx = await load_setup(session, esc, case.clinic_id, now)
    rules = await setup.load_rules(session, case.clinic_id)
    found = domain.route(rules, case.case_type, case.severity, ctx.clinic.hours, now)
    decision = domain.on_raised(case, found, ctx.rotations, now, ctx.policy)
    await apply(session, esc, ctx, decision, now, headers=headers)
    return True


async def fire_timer(session: AsyncSession, esc: Escalation, timer: Timer) -> None:
    # The poller already holds this timer's row; a staff action holding the case may be about
    # to cancel that timer. Waiting for the case here could deadlock, so a busy case's timer is
    # put back and fires on the next poll (and then finds the case acknowledged, or not).
    case = await cases.lock(session, timer.key, skip_locked=True)
    if case is None:
        if await cases.exists(session, timer.key):
            await esc.runtime.timers.schedule(
                session,
                timer.kind,
                timer.key,
                timer.due_at,
                patient_key=timer.patient_key,
                payload=timer.payload,
            )
        return
    if case.state is CaseState.resolved:
        return
    now = esc.clock.now()
    ctx = await load_setup(session, esc, case.clinic_id, now)
    if timer.kind == PAGE_TIMER:
        decision = domain.on_page_due(case, ctx.rotations, now, ctx.policy)
    else:
        reroute = None
        if case.rotation_id is None:
            rules = await setup.load_rules(session, case.clinic_id)
            reroute = domain.route(rules, case.case_type, case.severity, ctx.clinic.hours, now)
        attempt = int(timer.payload.get("attempt", case.attempt))
        decision = domain.on_ack_due(case, attempt, ctx.rotations, now, ctx.policy, reroute)
    await apply(session, esc, ctx, decision, now)
