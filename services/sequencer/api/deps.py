"""What every sequencer route needs: the runtime, the service's default rules, path shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.sequencer.batch import Batch
from services.sequencer.domain.model import Outcome, Patient, Sequence, clinic_of
from services.sequencer.domain.rules import Rules
from services.sequencer.domain.steps import Context
from shared.auth import Principal, require_clinic
from shared.runtime import Runtime
from shared.telemetry import inject_headers

RULES_EXTRA = "sequencer_rules"
MESSENGER_URL_EXTRA = "sequencer_messenger_url"


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


def base_rules(runtime: Runtime) -> Rules:
    rules = runtime.extras.get(RULES_EXTRA)
    if not isinstance(rules, Rules):
        raise HTTPException(503, "the sequencer is still starting")
    return rules


def scoped_patient(principal: Principal, patient_key: str) -> str:
    """The patient's clinic, once the caller is known to be allowed there (403 otherwise)."""
    clinic = clinic_of(patient_key)
    require_clinic(principal, clinic)
    return clinic


Decide = Callable[[Patient, Sequence | None, Context], Outcome]


async def apply_to_patient(
    runtime: Runtime, session: AsyncSession, patient_key: str, decide: Decide
) -> Outcome:
    """Load one patient, run ``decide(patient, active, ctx)``, save and stage the outcome."""
    batch = Batch(runtime, session, base_rules(runtime))
    await batch.load([patient_key])
    now = runtime.clock.now()
    clinic = clinic_of(patient_key)
    out = decide(
        batch.patient(patient_key), batch.active_of(patient_key), batch.context(clinic, now)
    )
    batch.apply(out, clinic_id=clinic, patient_key=patient_key, now=now, headers=inject_headers())
    await batch.flush()
    return out
