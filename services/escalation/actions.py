"""What on-call staff do to a case: acknowledge, resolve, reassign. One transaction each, by a
named principal (``principal.subject`` goes into the events and the audit trail)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from services.escalation import domain
from services.escalation.domain import Case, Decision
from services.escalation.repository import cases
from services.escalation.workflow import CaseNotFound, Escalation, Setup, apply, load_setup
from shared.auth import Principal
from shared.events.escalations import Outcome


async def _act(
    esc: Escalation,
    escalation_id: str,
    principal: Principal,
    decide: Callable[[Case, Setup], Decision],
    note: str | None = None,
) -> Case:
    runtime = esc.runtime
    async with runtime.sessions() as session, session.begin():
        case = await _locked(session, escalation_id, principal)
        now = esc.clock.now()
        ctx = await load_setup(session, esc, case.clinic_id, now)
        decision = decide(case, ctx)  # CaseConflict rolls the transaction back
        await apply(session, esc, ctx, decision, now)
        if note:
            await cases.store_note(session, escalation_id, note)
    esc.wake_dispatcher()
    return decision.case


async def _locked(session: AsyncSession, escalation_id: str, principal: Principal) -> Case:
    case = await cases.lock(session, escalation_id)
    if case is None or not principal.may_access(case.clinic_id):
        raise CaseNotFound(escalation_id)
    return case


async def acknowledge(esc: Escalation, escalation_id: str, principal: Principal) -> Case:
    now = esc.clock.now()
    return await _act(
        esc,
        escalation_id,
        principal,
        lambda case, _ctx: domain.acknowledge(case, principal.subject, now),
    )


async def resolve(
    esc: Escalation,
    escalation_id: str,
    principal: Principal,
    outcome: Outcome,
    *,
    note: str | None,
    resume_outreach: bool | None,
) -> Case:
    now = esc.clock.now()
    return await _act(
        esc,
        escalation_id,
        principal,
        lambda case, _ctx: domain.resolve(
            case, principal.subject, outcome, resume_outreach, now, has_note=bool(note)
        ),
        note=note,
    )


async def reassign(
    esc: Escalation,
    escalation_id: str,
    principal: Principal,
    *,
    responder_id: str | None,
    rotation_id: str | None,
) -> Case:
    now = esc.clock.now()
    return await _act(
        esc,
        escalation_id,
        principal,
        lambda case, ctx: domain.reassign(
            case,
            principal.subject,
            ctx.rotations,
            now,
            ctx.policy,
            responder_id=responder_id,
            rotation_id=rotation_id,
        ),
    )
