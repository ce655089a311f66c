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

import asyncio
from collections.abc import Awaitable
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
from services.console.domain.staff import Act, clinic_in_view
from services.console.domain.words import SEGMENTS, say
from services.console.repository.sessions import Session

router = APIRouter()
Verdict = Literal["held", "enrolled", "out", "exclusive"]


def _clinic_reads(console: Console, session: Session, clinic: str) -> dict[str, Awaitable[Any]]:
    """What week 1 reads of the pilot's clinic: the workflows, the words, the two routes."""
    apis, token = console.apis, session.token
    reads: dict[str, Awaitable[Any]] = {
        "workflows": apis.sequencer.workflows(token, clinic),
        "templates": apis.messenger.templates(token, clinic),
    }
    for case, severity, _ in weeks.ROUTED_CASES:
        reads[case] = apis.escalation.route(token, clinic, case, severity)
    return reads


def _reads(
    console: Console,
    session: Session,
    pilot_id: str,
    week: int,
    clinic: str | None,
    verdict: str | None,
) -> dict[str, Awaitable[Any]]:
    """What the week's page reads besides the pilot's review; week 1's clinic reads only when
    the clinic is known (else they follow the review)."""
    apis, token = console.apis, session.token
    if week == 1:
        reads = {"preview": apis.pilots.preview(token, pilot_id, verdict)}
        return reads | (_clinic_reads(console, session, clinic) if clinic else {})
    if week in (3, 4):
        return {"report": apis.metrics.pilot_report(token, pilot_id)}
    return {}


async def _read(reads: dict[str, Awaitable[Any]]) -> dict[str, Part[Any]]:
    return dict(zip(reads, await parts(*reads.values()), strict=True))


def _week_one(review: dict[str, Any], found: dict[str, Part[Any]]) -> dict[str, Any]:
    workflows, templates = found["workflows"], found["templates"]
    lines = (review.get("cohort") or {}).get("service_lines")
    return {
        "preview": found["preview"],
        "verdicts": weeks.VERDICTS,
        "steps": weeks.words_for(
            review["segment"], lines, workflows.value or [], templates.value or []
        ),
        "words_missing": workflows.missing or templates.missing,
        "routes": [
            (weeks.route_view(words, found[case].value), found[case].missing)
            for case, _, words in weeks.ROUTED_CASES
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
    apis, token, staff = console.apis, session.token, session.staff
    review_call = apis.pilots.review(token, pilot_id)  # 404 outside the person's clinics
    if asked is None:  # the week is the pilot's own: ask it first
        review = await review_call
        week = weeks.week_shown(None, review.get("week"))
        found = await _read(_reads(console, session, pilot_id, week, review["clinic_id"], verdict))
    else:  # one round: the clinic is the one in view (the pilot's, unless proved otherwise)
        week = asked
        guess = clinic_in_view(staff, request.query_params.get("clinic"), "")
        reads = _reads(console, session, pilot_id, week, guess, verdict)
        review_part, found = await asyncio.gather(part(review_call), _read(reads))
        review = review_part.essential()
        if week == 1 and guess != review["clinic_id"]:
            found |= await _read(_clinic_reads(console, session, review["clinic_id"]))
    context: dict[str, Any] = {"verdict": verdict}
    if week == 1:
        context |= _week_one(review, found)
    elif week in (3, 4):
        report: Part[dict[str, Any] | None] = found["report"]
        context["report"] = report
        if week == 3:
            context |= await _week_three(console, session, report)
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
