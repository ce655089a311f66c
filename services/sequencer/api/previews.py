"""What would go out, when, to whom, why, and in exactly which words (nothing is sent).

``GET /preview``: the active sequences' steps due in the next days. ``POST /previews/
eligibility``: the steps a would-be eligibility (the segment preview's) would start, planned by
the same pure core the timers run. The words come from the messenger's ``POST /previews`` with
the caller's own credential: only it holds the approved template versions and the patient's
language and name. When it cannot answer, the times and reasons are still shown, and why the
words are missing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from services.sequencer.adapters.words import WordsUnavailable, words_for
from services.sequencer.api.deps import MESSENGER_URL_EXTRA, RuntimeDep, base_rules
from services.sequencer.batch import Batch
from services.sequencer.domain import lifecycle
from services.sequencer.domain.model import Sequence, clinic_of, sequence_id_for
from services.sequencer.domain.preview import PreviewStep, first_known, project
from services.sequencer.repository import queries, state
from shared.auth import CurrentPrincipal, require_clinic
from shared.events.eligibility import PatientBecameEligible
from shared.runtime import Runtime

router = APIRouter(tags=["sequences"])
ClinicQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[^:\s]+$")]
ELIGIBILITY_HORIZON = timedelta(days=60)
PREVIEW_PAGE = 200  # at most, the sequences read at a time when only the first steps are asked


async def _with_words(
    runtime: Runtime, request: Request, steps: list[PreviewStep], words: bool
) -> tuple[list[dict[str, Any]], str | None]:
    views = [s.as_dict() for s in steps]
    if not words:
        return views, None
    items = [(s.patient_key, s.at, s.command) for s in steps if s.at and s.command is not None]
    try:
        said = await words_for(
            str(runtime.extras.get(MESSENGER_URL_EXTRA, "")),
            request.headers.get("authorization", ""),
            items,
        )
    except WordsUnavailable as exc:
        return views, str(exc)
    for view in views:
        found = said.get((str(view["sequence_id"]), int(str(view["step"]))))
        view["words"] = (
            {k: found.get(k) for k in ("channel", "language", "subject", "body", "would_send")}
            | {"blocked": found.get("blocked"), "refused": found.get("refused")}
            if found
            else None
        )
    return views, None


@router.get(
    "/preview",
    summary="Which steps would go out in the next days, when, to whom, why, and in which words",
)
async def preview(
    request: Request,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    clinic_id: ClinicQuery,
    days: Annotated[int, Query(ge=1, le=60)] = 7,
    words: Annotated[bool, Query(description="ask the messenger for the exact words")] = True,
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=5000,
            description="only the first steps: sequences are read in due order until they are "
            "known; `waiting` then lists the paused ones among those read",
        ),
    ] = None,
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    now = runtime.clock.now()
    horizon = timedelta(days=days)
    steps: list[PreviewStep] = []
    async with runtime.sessions() as session:
        batch = Batch(runtime, session, base_rules(runtime))
        await batch.load_clinics({clinic_id})
        ctx = batch.context(clinic_id, now)

        async def project_all(found: list[Sequence]) -> None:
            keys = [s.patient_key for s in found]
            patients = await state.load_patients(session, keys, lock=False)
            for seq in found:
                steps.extend(project(patients[seq.patient_key], seq, ctx, horizon))

        if limit is None:
            await project_all(await queries.active_in_clinic(session, clinic_id, now + horizon))
        else:
            after: tuple[datetime, str] | None = None
            page = min(PREVIEW_PAGE, limit)  # each sequence read gives a step or more
            while True:
                found = await queries.due_in_clinic(session, clinic_id, now + horizon, after, page)
                await project_all(found)
                if len(found) < page:
                    break
                last = found[-1]
                assert last.next_due is not None  # the page reads due sequences only
                after = (last.next_due, last.sequence_id)
                known = [s.at for s in steps if s.at]
                if first_known(known, limit, max(last.next_due, now)):
                    break
    if limit is not None:  # only the first steps need words
        going_first = sorted((s for s in steps if s.at), key=lambda s: (s.at, s.patient_key))
        steps = going_first[:limit] + [s for s in steps if s.at is None]
    views, missing = await _with_words(runtime, request, steps, words)
    going = sorted(
        (v for v in views if v["at"] is not None),
        key=lambda v: (str(v["at"]), str(v["patient_key"])),
    )
    return {
        "clinic_id": clinic_id,
        "from": now.isoformat(),
        "until": (now + horizon).isoformat(),
        "steps": going,
        "waiting": [v for v in views if v["at"] is None],
        **({"words_missing": missing} if missing else {}),
    }


class WouldBeEligible(BaseModel):
    patient_key: str = Field(min_length=3, max_length=200, pattern=r"^[^:\s]+:\S+$")
    at: AwareDatetime = Field(description="when the need would open")
    eligibility: PatientBecameEligible


class WouldBeRequest(BaseModel):
    items: list[WouldBeEligible] = Field(max_length=500)


@router.post(
    "/previews/eligibility",
    summary="The steps (and their words) a would-be eligibility would start; nothing is saved",
)
async def preview_eligibility(
    request: Request, principal: CurrentPrincipal, runtime: RuntimeDep, body: WouldBeRequest
) -> dict[str, Any]:
    clinics = {clinic_of(i.patient_key) for i in body.items}
    for clinic in sorted(clinics):
        require_clinic(principal, clinic)
    async with runtime.sessions() as session:
        batch = Batch(runtime, session, base_rules(runtime))
        await batch.load_clinics(clinics)
        patients = await state.load_patients(
            session, [i.patient_key for i in body.items], lock=False
        )
    steps: list[PreviewStep] = []
    for item in body.items:
        steps += _would_send(batch, patients[item.patient_key], item.eligibility, item.at)
    views, missing = await _with_words(runtime, request, steps, True)
    return {"steps": views, **({"words_missing": missing} if missing else {})}


def _would_send(
    batch: Batch, patient: Any, event: PatientBecameEligible, at: datetime
) -> list[PreviewStep]:
    """The steps ``event`` would start if it opened at ``at`` (the pure core, nothing saved)."""
    ctx = batch.context(clinic_of(patient.patient_key), at)
    out = lifecycle.on_eligible(patient, None, event, ctx)
    seq = out.sequences.get(sequence_id_for(patient.patient_key, event.eligibility_id))
    if seq is None or seq.next_due is None:
        return []
    return project(out.patient, seq, ctx, ELIGIBILITY_HORIZON)
