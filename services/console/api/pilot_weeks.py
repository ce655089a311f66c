"""One pilot, a week at a time, as the playbook runs it: week 1 define (the definition, who the
cohort takes and why, the words and the escalation route), week 2 launch (the arms filling),
week 3 review (objections by barrier with the patients' words), week 4 compare (the report and
its charts); each week's checklist and the decision that ends it.

Each week reads only what it shows, the services at once: the sequencer's review (the pilot,
its arms, weeks, checklists and decisions), and for week 1 its preview, the workflows, the
templates and two routing previews; for weeks 3 and 4 the metrics report, and for week 3 the
example replies' words from the messenger's conversation API (they are kept nowhere else).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.console.adapters.base import ApiError
from services.console.api.deps import (
    CheckedForm,
    Console,
    ConsoleDep,
    SignedIn,
    back,
    form_of,
    render,
)
from services.console.api.gather import Part, part, parts
from services.console.api.pilots import PilotId, pilot_path
from services.console.domain import pilots as weeks
from services.console.domain.pilot_report import read_report
from services.console.domain.staff import Act
from services.console.domain.words import SEGMENTS, say
from services.console.repository.sessions import Session

router = APIRouter()
Verdict = Literal["held", "enrolled", "out", "exclusive"]


async def _week_one(
    console: Console, session: Session, review: dict[str, Any], verdict: str | None
) -> dict[str, Any]:
    apis, token, clinic = console.apis, session.token, review["clinic_id"]
    preview, workflows, templates, *routes = await parts(
        apis.pilots.preview(token, review["pilot_id"], verdict),
        apis.sequencer.workflows(token, clinic),
        apis.messenger.templates(token, clinic),
        *(apis.escalation.route(token, clinic, case, sev) for case, sev, _ in weeks.ROUTED_CASES),
    )
    lines = (review.get("cohort") or {}).get("service_lines")
    return {
        "preview": preview,
        "verdict": verdict,
        "verdicts": weeks.VERDICTS,
        "steps": weeks.words_for(
            review["segment"], lines, workflows.value or [], templates.value or []
        ),
        "words_missing": workflows.missing or templates.missing,
        "routes": [
            (weeks.route_view(words, r.value), r.missing)
            for (_, _, words), r in zip(weeks.ROUTED_CASES, routes, strict=True)
        ],
    }


async def _week_three(
    console: Console, session: Session, report: Part[dict[str, Any] | None]
) -> dict[str, Any]:
    groups = (report.value or {}).get("objections") or []
    patients = weeks.example_patients(groups)
    said = await parts(*(console.apis.messenger.conversation(session.token, p) for p in patients))
    conversations = {p: s.value for p, s in zip(patients, said, strict=True)}
    found = weeks.objections(groups, conversations)
    return {
        "objections": found,
        "objections_chart": weeks.objections_chart(found) if found else None,
        "words_missing": next((s.missing for s in said if s.missing), None),
    }


async def _week(
    request: Request,
    console: Console,
    session: Session,
    pilot_id: str,
    asked: int | None,
    verdict: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    apis, token = console.apis, session.token
    review = await apis.pilots.review(token, pilot_id)  # 404 outside the person's clinics
    week = weeks.week_shown(asked, review.get("week"))
    context: dict[str, Any] = {}
    if week == 1:
        context = await _week_one(console, session, review, verdict)
    elif week in (3, 4):
        report: Part[dict[str, Any] | None] = await part(apis.metrics.pilot_report(token, pilot_id))
        context = {"report": report}
        if week == 3:
            context.update(await _week_three(console, session, report))
        elif report.value is not None:
            context["figures"] = read_report(report.value)
    clinic = review["clinic_id"]
    phase = weeks.phase_of_week(review.get("phases") or [], week)
    staff = session.staff
    return render(
        request,
        console,
        "pilot.html",
        session,
        status=status,
        clinic=clinic,
        pilot=review,
        week=week,
        tabs=weeks.tabs(review.get("week")),
        phase=phase,
        choices=weeks.decision_choices(
            (phase or {}).get("decisions_allowed") or [],
            staff.may_in(Act.steer_pilot, clinic),
            launched=review.get("launched_at") is not None,
        ),
        arm_weeks=weeks.arm_weeks(review.get("weeks") or []),
        arm_figures=weeks.ARM_FIGURES,
        segment_words=say(SEGMENTS, review.get("segment")),
        may_decide=staff.may_in(Act.decide_pilot, clinic),
        may_steer=staff.may_in(Act.steer_pilot, clinic),
        error=error,
        done=None if error else request.query_params.get("done"),
        **context,
    )


@router.get("/pilots/{pilot_id}", response_class=HTMLResponse)
async def pilot_page(
    request: Request,
    console: ConsoleDep,
    session: SignedIn,
    pilot_id: PilotId,
    week: Annotated[int | None, Query(ge=1, le=4)] = None,
    verdict: Verdict | None = None,
) -> Response:
    return await _week(request, console, session, pilot_id, week, verdict)


@router.post("/pilots/{pilot_id}/decisions")
async def decide(
    request: Request, console: ConsoleDep, session: CheckedForm, pilot_id: PilotId
) -> Response:
    form = await form_of(request)
    try:
        asked = int(form.get("week", ""))
    except ValueError:
        raise HTTPException(422, "the form names no week") from None
    review = await console.apis.pilots.review(session.token, pilot_id)
    phase = weeks.phase_of_week(review.get("phases") or [], asked)
    if phase is None:
        return await _week(
            request, console, session, pilot_id, asked, error="This week has not begun.", status=409
        )
    body, wrong = weeks.read_decision(form, phase)
    if wrong is None:
        try:
            await console.apis.pilots.decide(session.token, pilot_id, **body)
        except ApiError as exc:
            if exc.status not in (403, 409, 422):
                raise
            wrong = exc.words
    if wrong is not None:
        error = f"Not recorded: {wrong}."
        return await _week(request, console, session, pilot_id, asked, error=error, status=409)
    return back(pilot_path(pilot_id, asked), "decided")
