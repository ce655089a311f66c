"""CarePlan and ServiceRequest -> follow-ups, treatment series and treatment recommendations.

- ServiceRequest, active, intent proposal, made in an encounter (the consultation), for a service
  the table knows -> TreatmentRecommended.
- ServiceRequest, active, intent plan/order/original-order/directive, for a follow-up visit code
  or a known service, with an occurrence (date, period, Timing or "in 6 months") ->
  FollowUpRecommended. Referrals (care elsewhere), the scheduler's own orders (filler-order,
  instance-order, reflex-order) and requests an Appointment in the same Bundle already books
  are left out.
- CarePlan activity whose Timing repeats a counted number of times at a period (e.g. 6 sessions
  every 4 weeks) -> TreatmentPlanUpdated; sessions completed = the activity's outcomeReferences,
  dated by those records in the Bundle. The plan's purpose (medical care, or elective) is read
  from a CarePlan.category coding in ``urn:revisit:plan-purpose`` (``care`` / ``marketing``):
  a laser or peel series can be either, and outreach follows what the plan documents.
- CarePlan activity for a visit (kind Appointment, a follow-up code or a known service) that is
  not started yet, with a schedule -> FollowUpRecommended (a Timing without a count recurs).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from services.ingest.domain import Fact, Problem, Refused, build
from services.ingest.fhir.context import DocumentContext, codes, codings, text_of
from services.ingest.fhir.reading import Entry
from services.ingest.fhir.timing import When, when
from services.ingest.mapping.service_lines import is_follow_up_code
from services.ingest.mapping.timing import days_of
from shared.events.common import ClinicalUrgency, Purpose, ServiceCode, ServiceLine
from shared.events.ehr import (
    FollowUpRecommended,
    PlanStatus,
    TreatmentPlanUpdated,
    TreatmentRecommended,
)

_URGENCY = {"urgent": ClinicalUrgency.soon, "asap": ClinicalUrgency.urgent}
_URGENCY |= {"stat": ClinicalUrgency.urgent}
_SCHEDULER_INTENTS = {"filler-order", "instance-order", "reflex-order"}
_REFERRAL = "3457005"  # SNOMED CT "Patient referral"
_PLAN_STATUS = {
    "active": PlanStatus.active,
    "on-hold": PlanStatus.on_hold,
    "completed": PlanStatus.completed,
    "revoked": PlanStatus.cancelled,
}
_ACTIVITY_STATUS = {
    "on-hold": PlanStatus.on_hold,
    "completed": PlanStatus.completed,
    "cancelled": PlanStatus.cancelled,
    "stopped": PlanStatus.cancelled,
}
Mapped = tuple[list[Fact], list[Problem]]


def map_service_request(entry: Entry, doc: DocumentContext, booked: set[str]) -> Mapped:
    sr, loc = entry.resource, entry.loc
    skip = _skip_request(sr, booked)
    if skip:
        return [], [Problem(loc, skip)]
    patient_id = doc.patient(sr.subject, f"{loc}.subject")
    source = doc.source(sr)
    line = doc.ctx.service_lines.first(codings(sr.code))
    recommended_on = doc.day(sr.authoredOn) or source.source_updated_at.date()
    timing = when(
        doc,
        date_time=sr.occurrenceDateTime,
        period=sr.occurrencePeriod,
        timing=sr.occurrenceTiming,
        text=text_of(sr.code),
    )
    common = {
        "source": source,
        "service_line": line,
        "provider_id": doc.practitioner(sr.requester),
        "urgency": _URGENCY.get(sr.priority or "", ClinicalUrgency.routine),
    }
    visit_id = doc.id_of(sr.encounter, "Encounter")
    if sr.intent == "proposal":
        if line is ServiceLine.unspecified or visit_id is None:
            why = "a proposal becomes a treatment recommendation when made in an encounter"
            return [], [Problem(loc, f"{why} for a service the table knows")]
        payload: Any = build(
            TreatmentRecommended,
            loc,
            **common,
            recommendation_id=sr.id,
            visit_id=visit_id,
            recommended_on=recommended_on,
            treatment=_treatment(sr.code),
            start_within_days=_within(timing, recommended_on),
            sessions_estimated=_sessions(sr, timing),
        )
    else:
        if line is ServiceLine.unspecified and not any(map(is_follow_up_code, codes(sr.code))):
            return [], [Problem(f"{loc}.code", "not a follow-up visit or a known service")]
        if not timing.known:
            return [], [Problem(f"{loc}.occurrence", "no date or interval: not a follow-up")]
        payload = build(
            FollowUpRecommended,
            loc,
            **common,
            follow_up_id=sr.id,
            visit_id=visit_id,
            recommended_on=recommended_on,
            due_on=timing.due_on,
            interval_days=timing.interval_days,
            recurring=timing.recurring,
            reason_text=text_of(sr.code),
        )
    return [Fact(patient_id, payload, source.source_updated_at)], []


def _skip_request(sr: Any, booked: set[str]) -> str | None:
    if sr.status != "active":
        return "only an active request is a recommendation"
    if sr.intent in _SCHEDULER_INTENTS:
        return "the scheduler's own order, not a recommendation"
    if sr.id in booked:
        return "already booked: an Appointment in this Bundle is based on it"
    if _REFERRAL in codes(sr.category):
        return "a referral: care elsewhere"
    return None


def _treatment(concept: Any) -> ServiceCode | None:
    for system, code in codings(concept):
        if system is not None and len(code) <= 64 and " " not in code:
            return ServiceCode(code=code, system=system)
    return None


def _within(timing: When, recommended_on: date) -> int | None:
    if timing.due_on is not None and timing.due_on > recommended_on:
        return min((timing.due_on - recommended_on).days, 3650)
    return timing.interval_days


def _sessions(sr: Any, timing: When) -> int | None:
    quantity = sr.quantityQuantity.value if sr.quantityQuantity is not None else None
    value = int(quantity) if quantity is not None else timing.count
    return value if value is not None and 1 <= value <= 100 else None


def map_care_plan(entry: Entry, doc: DocumentContext) -> Mapped:
    cp, loc = entry.resource, entry.loc
    status = _PLAN_STATUS.get(cp.status or "")
    if status is None:
        return [], [Problem(f"{loc}.status", "only an active, on-hold, completed or revoked plan")]
    patient_id = doc.patient(cp.subject, f"{loc}.subject")
    source = doc.source(cp)
    facts: list[Fact] = []
    notes: list[Problem] = []
    for index, activity in enumerate(cp.activity or []):
        detail, where = activity.detail, f"{loc}.activity[{index}]"
        if detail is None:
            continue
        repeat = detail.scheduledTiming.repeat if detail.scheduledTiming else None
        if repeat is not None and (repeat.count or 0) >= 2 and repeat.period and repeat.periodUnit:
            payload: Any = _series(cp, activity, where, status, doc)
        else:
            payload = _follow_up(cp, activity, where, doc)
            if isinstance(payload, Problem):
                notes.append(payload)
                continue
        facts.append(Fact(patient_id, payload, source.source_updated_at))
    return facts, notes


PURPOSE_SYSTEM = "urn:revisit:plan-purpose"
_PURPOSES = {"care": Purpose.care, "marketing": Purpose.marketing}


def _purpose(cp: Any) -> Purpose | None:
    for concept in cp.category or []:
        for coding in concept.coding or []:
            if coding.system == PURPOSE_SYSTEM and coding.code in _PURPOSES:
                return _PURPOSES[coding.code]
    return None


def _series(cp: Any, activity: Any, where: str, status: PlanStatus, doc: DocumentContext) -> Any:
    detail = activity.detail
    repeat = detail.scheduledTiming.repeat
    interval = days_of(repeat.period, repeat.periodUnit)
    if interval is None:
        raise Refused([Problem(f"{where}.detail.scheduledTiming.repeat", "interval under a day")])
    done = activity.outcomeReference or []
    dates = [d for d in (_session_day(doc, ref) for ref in done) if d is not None]
    if done and not dates:
        why = "completed sessions need dates: include their Encounter or Procedure"
        raise Refused([Problem(f"{where}.outcomeReference", why)])
    start = cp.period.start if cp.period is not None else None
    return build(
        TreatmentPlanUpdated,
        where,
        source=doc.source(cp),
        plan_id=f"{cp.id}#{_index(where)}",
        service_line=doc.ctx.service_lines.first(codings(detail.code)),
        sessions_planned=repeat.count,
        sessions_completed=len(done),
        interval_days=interval,
        status=_ACTIVITY_STATUS.get(detail.status or "", status),
        started_on=doc.day(start),
        last_session_on=max(dates) if dates else None,
        provider_id=doc.practitioner(cp.author),
        purpose=_purpose(cp),
    )


def _follow_up(cp: Any, activity: Any, where: str, doc: DocumentContext) -> Any:
    detail = activity.detail
    line = doc.ctx.service_lines.first(codings(detail.code))
    is_visit = detail.kind == "Appointment" or any(map(is_follow_up_code, codes(detail.code)))
    if line is ServiceLine.unspecified and not is_visit:
        return Problem(f"{where}.detail.code", "not a follow-up visit or a known service")
    if cp.status != "active" or detail.status != "not-started":
        return Problem(f"{where}.detail.status", "not an open follow-up (not-started, active plan)")
    timing = when(
        doc,
        period=detail.scheduledPeriod,
        timing=detail.scheduledTiming,
        text=detail.scheduledString,
    )
    if not timing.known:
        return Problem(f"{where}.detail.scheduled", "no date or interval: not a follow-up")
    source = doc.source(cp)
    return build(
        FollowUpRecommended,
        where,
        source=source,
        follow_up_id=f"{cp.id}#{_index(where)}",
        visit_id=doc.id_of(cp.encounter, "Encounter"),
        recommended_on=doc.day(cp.created) or source.source_updated_at.date(),
        service_line=line,
        due_on=timing.due_on,
        interval_days=timing.interval_days,
        recurring=timing.recurring,
        provider_id=doc.practitioner(cp.author),
        reason_text=(detail.description or "").strip()[:500] or text_of(detail.code),
    )


def _index(where: str) -> str:
    return where.rsplit("[", 1)[1].rstrip("]")


def _session_day(doc: DocumentContext, ref: Any) -> date | None:
    entry = doc.entry(ref)
    if entry is None or isinstance(entry.resource, dict):
        return None
    res = entry.resource
    for value in (
        getattr(getattr(res, "period", None), "end", None),
        getattr(getattr(res, "period", None), "start", None),
        getattr(res, "performedDateTime", None),
        getattr(getattr(res, "performedPeriod", None), "end", None),
        getattr(res, "start", None),
    ):
        found = doc.day(value)
        if found is not None:
            return found
    return None
