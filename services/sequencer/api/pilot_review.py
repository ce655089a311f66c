"""A pilot's preview (who its cohort takes, and why), its weekly review and decisions.

Every eligibility of a running pilot's segment is screened once; the preview lists them with
the verdict (enrolled in an arm, held, or out) and each filter's reason, before the launch and
after it. The review counts each week's facts per arm, shows each week's checklist and the
decisions recorded. Patients appear as opaque keys only; the plain reason is the eligibility's
own (built from structured fields, never a diagnosis).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.sequencer.api.deps import RuntimeDep
from services.sequencer.api.pilots import PilotId, close_and_complete, find_pilot, view
from services.sequencer.domain import pilot_phases
from services.sequencer.domain import pilots as rules
from services.sequencer.domain.pilots import PilotStatus
from services.sequencer.repository import pilots as repo
from services.sequencer.repository import screenings
from shared.auth import CurrentPrincipal, Operator

router = APIRouter(tags=["pilots"])
VERDICTS = ("enrolled", "held", "out", "exclusive")
# Every week's decisions (pilot_phases.DECISIONS); a week refuses those that are not its own.
DecisionWord = Literal["launch", "continue", "adjust", "stop", "expand"]

DRAFT_NOTE = (
    "A draft screens nothing yet. Started, the pilot screens every new eligibility of its "
    "segment: in week 1 (define) the ones its cohort takes are held and nobody is messaged; "
    "from the launch they are enrolled until the launch group is full."
)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    week: Annotated[int, Field(ge=1, le=60)]
    decision: DecisionWord
    # The keys of the week's checklist items staff confirmed (GET .../review lists them).
    checklist: Annotated[list[str], Field(max_length=20)] = []
    # Staff notes about the cohort as a whole: never patient names, numbers or words.
    note: Annotated[str, StringConstraints(max_length=1000)] = ""


@router.get(
    "/pilots/{pilot_id}/preview", summary="Who the cohort takes (enrolled or held), who not, why"
)
async def preview(
    pilot_id: PilotId,
    principal: CurrentPrincipal,
    runtime: RuntimeDep,
    verdict: Literal["enrolled", "held", "out", "exclusive"] | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    async with runtime.sessions() as session:
        pilot = await find_pilot(session, pilot_id, principal)
        counts = await screenings.screening_counts(session, pilot_id)
        rows = await screenings.screenings(session, pilot_id, verdict, limit)
    return {
        **view(pilot, runtime.clock.now()),
        "screened": {v: counts.get(v, 0) for v in VERDICTS},
        "patients": rows,
        "note": DRAFT_NOTE if pilot.status is PilotStatus.draft else "",
    }


@router.get("/pilots/{pilot_id}/review", summary="Week by week: figures, checklist, decisions")
async def review(
    pilot_id: PilotId, principal: CurrentPrincipal, runtime: RuntimeDep
) -> dict[str, Any]:
    now = runtime.clock.now()
    async with runtime.sessions() as session:
        pilot = await find_pilot(session, pilot_id, principal)
        facts = await repo.facts(session, pilot_id) if pilot.starts_at else []
        reviews = await repo.reviews(session, pilot_id)
        arms = await repo.arm_counts(session, pilot_id)
        counts = await screenings.screening_counts(session, pilot_id)
    weeks = rules.review(pilot, facts) if pilot.starts_at else {}
    return {
        **view(pilot, now),
        "arms": {"outreach": arms.get("outreach", 0), "holdout": arms.get("holdout", 0)},
        "screened": {v: counts.get(v, 0) for v in VERDICTS},
        "weeks": [
            {"week": w, **{arm: cell.as_dict() for arm, cell in sorted(weeks[w].items())}}
            for w in sorted(weeks)
        ],
        "phases": pilot_phases.phases(pilot, reviews, now) if pilot.starts_at else [],
        "reviews": reviews,
        "note": "Operational counts per arm and week (week 1 is the define week: nobody is "
        "messaged). The metrics service compares rebooking, completed visits and revenue with "
        "the holdout and with the previous weeks, with confidence intervals, and lists the "
        "objections by barrier with references to example replies.",
    }


@router.post("/pilots/{pilot_id}/reviews", status_code=201, summary="Record a week's decision")
async def add_review(
    pilot_id: PilotId, body: DecisionIn, principal: Operator, runtime: RuntimeDep
) -> dict[str, Any]:
    """Record the decision that ends a week, with the checklist items confirmed. ``launch``
    (week 1) opens enrolment and ``stop`` closes the pilot: both need an admin."""
    if body.decision in pilot_phases.ADMIN_DECISIONS and not principal.has_role("admin"):
        raise HTTPException(403, f"{body.decision} needs an admin")
    now = runtime.clock.now()
    async with runtime.sessions() as session, session.begin():
        pilot = await find_pilot(session, pilot_id, principal, lock=True)
        try:
            decided = pilot_phases.check_decision(
                pilot, body.week, body.decision, body.checklist, now
            )
            if decided.decision == "launch":
                pilot = rules.launch(pilot, now)
                await repo.save(session, pilot)
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        if decided.decision == "stop":
            pilot, _ = await close_and_complete(runtime, session, pilot)
        await repo.add_review(
            session,
            pilot_id,
            body.week,
            body.decision,
            body.note,
            principal.subject,
            now,
            decided.checked,
        )
    return {
        "pilot_id": pilot_id,
        "week": body.week,
        "phase": decided.phase.value,
        "decision": body.decision,
        "checklist": list(decided.checked),
        "reviewed_at": now.isoformat(),
        "launched_at": pilot.launched_at.isoformat() if pilot.launched_at else None,
        "status": pilot.status.value,
    }
