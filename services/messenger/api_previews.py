"""``POST /previews``: the exact words steps would send, and whether they would go (sends nothing).

Staff read message bodies here (the sequencer's and the segmenter's previews forward the
caller's own credentials), never in logs. Every item's clinic must be in the caller's scope.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, Field

from services.messenger.context import MessengerContext
from services.messenger.previews import preview_steps
from shared.auth import CurrentPrincipal, require_clinic
from shared.events.outreach import SendStep
from shared.ids import PatientKey
from shared.runtime import Runtime

router = APIRouter(tags=["previews"])


class PreviewItem(BaseModel):
    patient_key: PatientKey
    at: AwareDatetime = Field(description="the moment the step would be sent")
    command: SendStep


class PreviewRequest(BaseModel):
    items: list[PreviewItem] = Field(max_length=1000)


@router.post("/previews", summary="The exact words of steps that would go, and whether they would")
async def previews(
    request: Request, principal: CurrentPrincipal, body: PreviewRequest
) -> dict[str, object]:
    for clinic in sorted({i.patient_key.split(":", 1)[0] for i in body.items}):
        require_clinic(principal, clinic)
    runtime: Runtime = request.app.state.runtime
    ctx: MessengerContext = runtime.extras["messenger"]
    async with runtime.sessions() as session:
        found = await preview_steps(
            runtime, ctx, session, [(i.patient_key, i.at, i.command) for i in body.items]
        )
    return {"items": found}
