"""The production profile's refusal of escalation routes that end at the sandbox notifier: at
start-up (every clinic) and whenever a clinic's hours, rotations, rules or notifiers change."""

from __future__ import annotations

import logging

from fastapi import HTTPException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.escalation.domain.live_routes import sandbox_routes
from services.escalation.notifiers import NotifierKind
from services.escalation.repository import SCHEMA, notifiers, setup
from shared.runtime import Runtime

log = logging.getLogger(__name__)


class SandboxRoutes(Exception):
    """Urgent or high cases of a clinic would be paged only into the sandbox's table."""


async def problems_of(session: AsyncSession, clinic_id: str) -> list[str]:
    clinic = await setup.load_clinic(session, clinic_id)
    if clinic is None:
        return []
    rows = await session.execute(
        text(f"SELECT notifier_id, kind FROM {SCHEMA}.notifiers WHERE clinic_id = :c"),
        {"c": clinic_id},
    )
    real = {r.notifier_id for r in rows if r.kind != NotifierKind.sandbox}
    rules = await setup.load_rules(session, clinic_id)
    rotations = await setup.load_rotations(session, clinic_id)
    return sandbox_routes(rules, rotations, clinic.default_notifiers, real)


def _message(clinic_id: str, problems: list[str]) -> str:
    return (
        f"clinic {clinic_id}: urgent and high cases must page a real notifier in production, "
        f"but {'; '.join(problems)}"
    )


async def refuse_sandbox_routes(runtime: Runtime, session: AsyncSession, clinic_id: str) -> None:
    """In production, 422 naming the clinic and each route (the caller's transaction rolls
    back); elsewhere nothing."""
    if runtime.settings.revisit_profile != "production":
        return
    if problems := await problems_of(session, clinic_id):
        raise HTTPException(422, _message(clinic_id, problems))


async def check_every_clinic(runtime: Runtime) -> None:
    """In production, refuse to start while any set-up clinic's urgent or high route is a
    sandbox's. A clinic with no real notifier yet (first seen through a case) is not set up:
    every page of it goes to the deployment's fallback notifier, so it does not stop the start
    (which would stop paging for every clinic); it is logged instead."""
    if runtime.settings.revisit_profile != "production":
        return
    async with runtime.sessions() as session:
        clinics = await session.execute(text(f"SELECT clinic_id FROM {SCHEMA}.clinics"))
        found = []
        not_set_up = []
        for (clinic_id,) in clinics.all():
            if not await notifiers.has_real(session, clinic_id):
                not_set_up.append(clinic_id)  # every page goes to the fallback (fallback.py)
            elif problems := await problems_of(session, clinic_id):
                found.append(_message(clinic_id, problems))
    if not_set_up:
        log.warning(
            "clinics not set up: their pages go to the deployment fallback notifier",
            extra={"clinic_ids": sorted(not_set_up)},
        )
    if found:
        raise SandboxRoutes(" | ".join(found))
