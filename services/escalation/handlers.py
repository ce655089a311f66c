"""Escalation shell: store raised cases and their resolutions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.escalation import domain, repository
from shared.consumer import BatchHandler, Delivery
from shared.runtime import Runtime


def cases_handler(runtime: Runtime) -> BatchHandler:
    async def handle(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
        for d in deliveries:
            case = domain.case_from(d.envelope)
            if case is not None:
                await repository.open_case(session, case)
            resolved = domain.resolution_of(d.envelope)
            if resolved is not None:
                await repository.resolve_case(session, *resolved)

    return handle
