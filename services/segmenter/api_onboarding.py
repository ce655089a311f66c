"""Onboarding a practice: hold its outreach while its history loads, then let it go.

``PUT /clinics/{clinic_id}/onboarding {"holding": true}`` sets the clinic's
``general.hold_outreach``: every EHR event is still read and every need found and kept, but
nothing opens (no PatientBecameEligible, no service-recovery case) and the sweep leaves the
clinic alone. ``{"holding": false}`` lifts it, which re-evaluates each of the clinic's patients
once, at that moment, with the whole history in: a cancellation from three years ago is long
out of its window by then, and nothing is sent for it. ``GET`` says whether it holds and how
far that re-evaluation has got. ``revisit backfill`` drives both.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from services.segmenter import repository
from services.segmenter.api import RuntimeDep, _change
from services.segmenter.domain.params import effective
from services.segmenter.repository import SCHEMA
from shared.auth import Admin, CurrentPrincipal, require_clinic
from shared.ids import ClinicId

router = APIRouter(tags=["segmenter"])


class Onboarding(BaseModel):
    holding: bool


@router.get("/clinics/{clinic_id}/onboarding", summary="Is outreach held while history loads")
async def get_onboarding(
    clinic_id: ClinicId, principal: CurrentPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    async with runtime.sessions() as session:
        overrides, version = await repository.overrides_of(session, clinic_id)
        row = (
            await session.execute(
                text(
                    f"SELECT count(*) AS patients, count(*) FILTER (WHERE params_version <> :v) "
                    f"AS pending FROM {SCHEMA}.patients WHERE clinic_id = :c"
                ),
                {"c": clinic_id, "v": version},
            )
        ).one()
    return {
        "clinic_id": clinic_id,
        "holding": effective(overrides).general.hold_outreach,
        "params_version": version,
        "patients": row.patients,
        "pending_reevaluation": row.pending,
    }


@router.put("/clinics/{clinic_id}/onboarding", summary="Hold or release outreach (admin)")
async def put_onboarding(
    clinic_id: ClinicId, body: Onboarding, principal: Admin, runtime: RuntimeDep
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    async with runtime.sessions() as session:
        overrides, _ = await repository.overrides_of(session, clinic_id)
    general = effective(overrides).general.model_dump(mode="json")
    general["hold_outreach"] = body.holding
    view = await _change(runtime, clinic_id, "general", general, principal.subject)
    return {"clinic_id": clinic_id, "holding": body.holding, "params_version": view["version"]}
