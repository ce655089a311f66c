"""A finished visit as the EHR pushes it: Encounter, Claim, and what the visit recommended
(ServiceRequest follow-up or proposal, CarePlan for a counted series), in one Bundle."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from simulator.fhir_shapes import (
    TERMINOLOGY,
    Resource,
    days,
    instant,
    meta,
    ref,
    service_concept,
    transaction,
)
from simulator.model import Clinic, FollowUp, Recommendation, SeriesPlan, VisitRecord

_PLAN_STATUS = {"on_hold": "on-hold", "cancelled": "revoked"}
_ACTIVITY_STATUS = {"completed": "completed", "on_hold": "on-hold", "cancelled": "cancelled"}


def visit_bundle(visit: VisitRecord, clinic: Clinic, updated: datetime) -> Resource:
    """The finished encounter, its claim, and the follow-up, recommendation or series plan."""
    resources = [_encounter(visit, clinic, updated)]
    if visit.charges:
        resources.append(_claim(visit, clinic, updated))
    if visit.follow_up is not None:
        resources.append(_follow_up(visit, visit.follow_up, clinic, updated))
    if visit.recommendation is not None:
        resources.append(_recommendation(visit, visit.recommendation, clinic, updated))
    if visit.plan is not None:
        resources.append(_care_plan(visit, visit.plan, clinic, updated))
        resources += _sessions(visit, visit.plan, clinic, updated)
    return transaction(resources)


def _encounter(visit: VisitRecord, clinic: Clinic, updated: datetime) -> Resource:
    resource: Resource = {
        "resourceType": "Encounter",
        "id": visit.visit_id,
        "meta": meta(1, updated, clinic),
        "status": "finished",
        "class": {"system": f"{TERMINOLOGY}/v3-ActCode", "code": "AMB"},
        "subject": ref("Patient", visit.patient_id),
        "participant": [
            {
                "type": [
                    {"coding": [{"system": f"{TERMINOLOGY}/v3-ParticipationType", "code": "ATND"}]}
                ],
                "individual": ref("Practitioner", visit.provider_id),
            }
        ],
        "period": {"start": instant(visit.start, clinic), "end": instant(visit.end, clinic)},
        "location": [{"location": ref("Location", visit.location_id)}],
    }
    if visit.charges:
        resource["type"] = [service_concept(clinic, visit.charges[0].service_code)]
    if visit.appointment_id:
        resource["appointment"] = [ref("Appointment", visit.appointment_id)]
    return resource


def _claim(visit: VisitRecord, clinic: Clinic, updated: datetime) -> Resource:
    items = [
        {
            "sequence": index,
            "productOrService": service_concept(clinic, charge.service_code),
            "encounter": [ref("Encounter", visit.visit_id)],
            "net": {"value": charge.amount_cents / 100, "currency": "USD"},
        }
        for index, charge in enumerate(visit.charges, start=1)
    ]
    total = sum(c.amount_cents for c in visit.charges) / 100
    return {
        "resourceType": "Claim",
        "id": f"{visit.visit_id}-claim",
        "meta": meta(1, updated, clinic),
        "status": "active",
        "type": {"coding": [{"system": f"{TERMINOLOGY}/claim-type", "code": "professional"}]},
        "use": "claim",
        "patient": ref("Patient", visit.patient_id),
        "created": instant(updated, clinic),
        "provider": ref("Practitioner", visit.provider_id),
        "priority": {"coding": [{"system": f"{TERMINOLOGY}/processpriority", "code": "normal"}]},
        "insurance": [
            {"sequence": 1, "focal": True, "coverage": ref("Coverage", f"{visit.patient_id}-cov")}
        ],
        "item": items,
        "total": {"value": total, "currency": "USD"},
    }


def _request(visit: VisitRecord, rid: str, clinic: Clinic, updated: datetime) -> Resource:
    return {
        "resourceType": "ServiceRequest",
        "id": rid,
        "meta": meta(1, updated, clinic),
        "status": "active",
        "subject": ref("Patient", visit.patient_id),
        "encounter": ref("Encounter", visit.visit_id),
        "authoredOn": instant(visit.end, clinic),
        "requester": ref("Practitioner", visit.provider_id),
    }


def _follow_up(visit: VisitRecord, fu: FollowUp, clinic: Clinic, updated: datetime) -> Resource:
    # FOLLOWUP beside the service: a return visit is taken even for a key ingest does not know.
    resource = _request(visit, fu.follow_up_id, clinic, updated)
    resource |= {"intent": "plan", "code": service_concept(clinic, fu.service_code, "FOLLOWUP")}
    return resource | _occurrence(fu.due_on, fu.interval_days, fu.recurring)


def _occurrence(due_on: date | None, interval: int | None, recurring: bool) -> dict[str, Any]:
    """A due date, a "within N days" bound, or a standing review repeating every N days."""
    timing: dict[str, Any] = {"event": [due_on.isoformat()]} if due_on is not None else {}
    if interval is not None and recurring:
        timing["repeat"] = {"frequency": 1, "period": interval, "periodUnit": "d"}
    elif interval is not None:
        timing["repeat"] = {"boundsDuration": days(interval)}
    elif due_on is not None:
        return {"occurrenceDateTime": due_on.isoformat()}
    return {"occurrenceTiming": timing} if timing else {}


def _recommendation(
    visit: VisitRecord, rec: Recommendation, clinic: Clinic, updated: datetime
) -> Resource:
    resource = _request(visit, rec.recommendation_id, clinic, updated)
    return resource | {
        "intent": "proposal",
        "code": service_concept(clinic, rec.service_code),
        "quantityQuantity": {"value": rec.sessions},
        "occurrenceTiming": {"repeat": {"boundsDuration": days(rec.start_within_days)}},
    }


def _care_plan(visit: VisitRecord, plan: SeriesPlan, clinic: Clinic, updated: datetime) -> Resource:
    done = len(plan.done_visit_ids)
    started = min(plan.done_dates) if plan.done_dates else visit.end.date()
    activity_status = _ACTIVITY_STATUS.get(plan.status, "in-progress" if done else "not-started")
    return {
        "resourceType": "CarePlan",
        "id": plan.plan_id,
        # The plan is re-sent after each session: its version is its progress.
        "meta": meta(done + 1, updated, clinic),
        "status": _PLAN_STATUS.get(plan.status, plan.status),
        "intent": "plan",
        "subject": ref("Patient", visit.patient_id),
        "encounter": ref("Encounter", visit.visit_id),
        "period": {"start": started.isoformat()},
        "author": ref("Practitioner", visit.provider_id),
        "activity": [
            {
                "outcomeReference": [
                    ref("Procedure", _session_id(v, plan)) for v in plan.done_visit_ids
                ],
                "detail": {
                    "kind": "Appointment",
                    "code": service_concept(clinic, plan.service_code),
                    "status": activity_status,
                    "scheduledTiming": {
                        "repeat": {
                            "count": plan.sessions_planned,
                            "period": plan.interval_days,
                            "periodUnit": "d",
                        }
                    },
                },
            }
        ],
    }


def _session_id(visit_id: str, plan: SeriesPlan) -> str:
    return f"{visit_id}-{plan.plan_id}"[:64]


def _sessions(
    visit: VisitRecord, plan: SeriesPlan, clinic: Clinic, updated: datetime
) -> list[Resource]:
    """One Procedure per session done, so ingest can date the plan's progress from the Bundle
    (earlier sessions' Encounters are not re-sent: that would re-send those visits too)."""
    return [
        {
            "resourceType": "Procedure",
            "id": _session_id(visit_id, plan),
            "meta": meta(1, updated, clinic),
            "status": "completed",
            "code": service_concept(clinic, plan.service_code),
            "subject": ref("Patient", visit.patient_id),
            "encounter": ref("Encounter", visit_id),
            "performedDateTime": day.isoformat(),
        }
        for visit_id, day in zip(plan.done_visit_ids, plan.done_dates, strict=True)
    ]
