"""Staff explanations: the journey as the segmenter sees it, and why the patient is in or out of
each segment, with the source records. This output is for staff screens only: it may show
StaffOnlyText (a plan's note), which never reaches an event, a log line or a template.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.segmenter.domain.decide import PatientState
from services.segmenter.domain.findings import Finding, Status
from services.segmenter.domain.journey import RecordKind
from services.segmenter.domain.memberships import Membership, MembershipStatus
from services.segmenter.domain.params import ClinicParams
from services.segmenter.domain.recovery import Recovery, assess
from services.segmenter.domain.rules import RULES, evaluate_all


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _source(source: Any) -> dict[str, str] | None:
    return {"kind": source.kind.value, "id": source.id} if source is not None else None


def _why(f: Finding | None, m: Membership | None, now: datetime) -> str:
    if m is not None and m.status is MembershipStatus.open:
        return f"in (primary, eligibility {m.eligibility_id}): {f.reason if f else ''}".strip()
    if m is not None and m.status is MembershipStatus.held:
        return f"held: {m.hold_reason}"
    if f is None:
        assert m is not None
        reason = m.closed_reason.value if m.closed_reason else "closed"
        return f"out: left ({reason}) and no longer found"
    status = f.status(now)
    if status is Status.ended:
        assert f.ended is not None
        return f"out: {f.ended.words} ({f.ended.reason.value})"
    if status is Status.expired:
        closed = f.closes_on or (f.expires_at.date() if f.expires_at else None)
        return f"out: its window closed on {_iso(closed)}"
    return f"not due yet: surfaces on {_iso(f.surface_at)}"


def _need(f: Finding | None, m: Membership | None, now: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {
        "need_id": (f or m).need_id,  # type: ignore[union-attr]
        "why": _why(f, m, now),
        "membership": m.status.value if m else None,
        "eligibility_id": m.eligibility_id if m else None,
        "hold_reason": m.hold_reason if m else None,
        "closed_reason": m.closed_reason.value if m and m.closed_reason else None,
    }
    if f is not None:
        out.update(
            {
                "finding": f.status(now).value,
                "reason": f.reason,
                "service_line": f.service_line.value,
                "source": _source(f.source),
                "window": {
                    "opens_on": _iso(f.opens_on),
                    "closes_on": _iso(f.closes_on),
                    "due_at": _iso(f.due_at),
                },
                "surfaces_at": _iso(f.surface_at),
                "expires_at": _iso(f.expires_at),
                "clinical_urgency": f.urgency.value,
                "needs_marketing_consent": f.needs_marketing_consent,
                "provider_id": f.provider_id,
                "location_id": f.location_id,
                "ended": (
                    {
                        "reason": f.ended.reason.value,
                        "by": _source(f.ended.by),
                        "because": f.ended.words,
                    }
                    if f.ended
                    else None
                ),
                "details": dict(f.details),
            }
        )
    elif m is not None:
        out.update({"service_line": m.service_line.value, "source": _source(m.source)})
    return out


def _recovery(recovery: Recovery | None) -> dict[str, Any] | None:
    if recovery is None:
        return None
    return {
        "active": recovery.active,
        "escalation_id": recovery.escalation_id,
        "feedback_id": recovery.feedback_id,
        "since": _iso(recovery.since),
        "lifted_because": recovery.lifted_because,
    }


def explain(state: PatientState, params: ClinicParams, now: datetime) -> dict[str, Any]:
    """Why the patient is in or out of every segment, evaluated live at ``now``."""
    results = evaluate_all(state.journey, params)
    primary = state.primary
    segments = []
    for segment in params.general.priority:
        rule = RULES[segment]
        result = results[segment]
        stored = {m.need_id: m for m in state.memberships.values() if m.segment is segment}
        needs = [_need(f, stored.pop(f.need_id, None), now) for f in result.findings]
        needs += [_need(None, m, now) for m in stored.values()]
        statuses = {n["membership"] for n in needs}
        status = next((s for s in ("open", "held", "upcoming") if s in statuses), "out")
        segments.append(
            {
                "segment": segment.value,
                "kind": rule.kind.value,
                "rule": rule.summary,
                "status": status,
                "why": [n["why"] for n in needs] + list(result.notes),
                "needs": needs,
                "parameters": params.rule(segment).model_dump(mode="json"),
            }
        )
    return {
        "patient_key": state.patient_key,
        "evaluated_at": now.isoformat(),
        "primary": (
            {"segment": primary.segment.value, "eligibility_id": primary.eligibility_id}
            if primary
            else None
        ),
        "service_recovery": _recovery(assess(state.journey, params, now, state.raised)),
        "segments": segments,
    }


def journey_view(state: PatientState, params: ClinicParams, now: datetime) -> dict[str, Any]:
    """The journey's records grouped by kind, each with where it came from."""
    j = state.journey
    sources = {
        (r.kind, r.record_id): {
            "event_type": r.event_type,
            "source_updated_at": _iso(r.stamp.updated_at),
            "source_version": r.stamp.version,
            "first_seen": _iso(r.first_at),
        }
        for r in j.records.values()
    }

    def records(kind: RecordKind) -> list[dict[str, Any]]:
        return [
            {
                **r.payload.model_dump(mode="json", exclude={"source"}),
                "record": sources[(kind, r.record_id)],
            }
            for r in j.of_kind(kind)
        ]

    return {
        "patient_key": state.patient_key,
        "patient": {
            "deceased": j.deceased,
            "active": not j.inactive,
            "known": j.patient is not None,
        },
        "appointments": [
            {
                "appointment_id": a.appointment_id,
                "status": a.status.value,
                "start": _iso(a.start),
                "service_line": a.service_line.value,
                "provider_id": a.provider_id,
                "location_id": a.location_id,
                "treatment_plan_id": a.plan_id,
                "status_recorded_at": _iso(a.changed_at),
                "cancelled_by": a.cancelled_by,
                "reason_code": a.reason_code.value if a.reason_code else None,
                "staff_note": a.staff_note,
            }
            for a in j.appointments
        ],
        "visits": [
            {
                "visit_id": v.visit_id,
                "appointment_id": v.appointment_id,
                "completed_at": _iso(v.completed_at),
                "service_lines": sorted(s.value for s in v.service_lines),
                "provider_id": v.provider_id,
                "location_id": v.location_id,
            }
            for v in j.visits
        ],
        "follow_ups": records(RecordKind.follow_up),
        "treatment_plans": records(RecordKind.treatment_plan),
        "treatment_recommendations": records(RecordKind.treatment_recommendation),
        "questions": records(RecordKind.question),
        "feedback": records(RecordKind.feedback),
        "service_recovery": _recovery(assess(j, params, now, state.raised)),
    }
