"""Fakes of the console's service clients, at their base classes: in-memory, recording each
call, and refusing what the real services refuse (a credential's role and clinic scope), so
route tests can check what the console shows and does without the services running.

A fake credential is ``fake:<subject>:<role>:<clinic,clinic|*>`` (``FakeTokens`` issues them).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from services.console.adapters.base import ApiError
from services.console.adapters.escalation import EscalationApi
from services.console.adapters.messenger import MessengerApi
from services.console.adapters.metrics import MetricsApi
from services.console.adapters.segmenter import SegmenterApi
from services.console.adapters.sequencer import SequencerApi
from services.console.adapters.staff_tokens import StaffTokens
from services.console.api.deps import Apis
from services.console.domain.staff import Staff
from tests.console.fake_pilots import FakePilots

RANK = {"viewer": 0, "operator": 1, "admin": 2}
NOW = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)


class FakeTokens(StaffTokens):
    def for_staff(self, staff: Staff, ttl: timedelta) -> str:
        clinics = "*" if staff.clinics is None else ",".join(staff.clinic_list)
        return f"fake:{staff.subject}:{staff.role}:{clinics}"


def _who(token: str) -> tuple[str, str, set[str] | None]:
    if not token.startswith("fake:"):  # an identity provider's access token (a JWT)
        claims = jwt.decode(token, options={"verify_signature": False})
        found = claims.get("revisit_clinics", [])
        listed = found.split() if isinstance(found, str) else list(found)
        return claims["sub"], claims["revisit_role"], None if listed == ["*"] else set(listed)
    _, subject, role, clinics = token.split(":", 3)
    return subject, role, None if clinics == "*" else set(clinics.split(","))


@dataclass
class World:
    """What the fake services know, and what they were asked to do."""

    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    conversations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    inbox: dict[str, dict[str, Any]] = field(default_factory=dict)  # patient_key -> state
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    outreach: dict[str, dict[str, Any]] = field(default_factory=dict)
    explain: dict[str, dict[str, Any]] = field(default_factory=dict)
    consent: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    actions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    templates: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    funnel: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    now: datetime = NOW  # the services' clock
    pilot_store: dict[str, Any] = field(default_factory=dict)  # pilot id -> sequencer Pilot
    pilot_arms: dict[str, dict[str, int]] = field(default_factory=dict)
    pilot_reviews: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pilot_weeks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    screenings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pilot_reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    workflows: list[dict[str, Any]] = field(default_factory=list)
    routes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    refuse_reply: dict[str, Any] | None = None  # the messenger's 409 detail, when set

    def allow(self, service: str, token: str, clinic: str, role: str = "viewer") -> str:
        subject, has, clinics = _who(token)
        if clinics is not None and clinic not in clinics:
            raise ApiError(service, 403, "this credential is not scoped to the requested clinic")
        if RANK[has] < RANK[role]:
            raise ApiError(service, 403, f"this action needs the {role} role or higher")
        return subject


def clinic_of(patient_key: str) -> str:
    return patient_key.split(":", 1)[0]


class FakeEscalation(EscalationApi):
    def __init__(self, world: World) -> None:
        self.w = world

    def _case(self, token: str, escalation_id: str, role: str = "viewer") -> dict[str, Any]:
        case = self.w.cases.get(escalation_id)
        if case is None:
            raise ApiError("escalation", 404, "no such case in the clinics this credential covers")
        try:
            self.w.allow("escalation", token, case["clinic_id"], role)
        except ApiError as exc:
            if "role" in str(exc.detail):
                raise
            raise ApiError("escalation", 404, "no such case") from None
        return case

    async def queue(self, token: str, clinic_id: str, state: str = "open") -> list[dict[str, Any]]:
        self.w.allow("escalation", token, clinic_id)
        return [copy.deepcopy(c) for c in self.w.cases.values() if c["clinic_id"] == clinic_id]

    async def case(self, token: str, escalation_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._case(token, escalation_id))

    async def notes(self, token: str, escalation_id: str) -> list[dict[str, Any]]:
        self._case(token, escalation_id)
        return list(self.w.notes.get(escalation_id, []))

    async def acknowledge(self, token: str, escalation_id: str) -> dict[str, Any]:
        case = self._case(token, escalation_id, "operator")
        who = _who(token)[0]
        if case["state"] == "acknowledged" and case["acknowledged_by"] != who:
            raise ApiError("escalation", 409, "already acknowledged by someone else: reassign")
        case.update(state="acknowledged", acknowledged_by=who, acknowledged_at=NOW.isoformat())
        self.w.calls.append(("acknowledge", escalation_id, who))
        return case

    async def add_note(self, token: str, escalation_id: str, note: str) -> dict[str, Any]:
        self._case(token, escalation_id, "operator")
        if not note.strip():
            raise ApiError("escalation", 422, "note: write something first")
        who = _who(token)[0]
        self.w.notes.setdefault(escalation_id, []).append(
            {"author": who, "note": note.strip(), "at": NOW.isoformat()}
        )
        self.w.calls.append(("note", escalation_id, who))
        return {"escalation_id": escalation_id}

    async def resolve(
        self, token: str, escalation_id: str, outcome: str, note: str, resume_outreach: bool | None
    ) -> dict[str, Any]:
        case = self._case(token, escalation_id, "operator")
        if outcome not in ("answered", "booked", "no_action", "referred"):
            raise ApiError("escalation", 422, [{"where": "body.outcome", "problem": "not one"}])
        who = _who(token)[0]
        case.update(state="resolved", outcome=outcome, resolved_by=who, note=note or None)
        self.w.calls.append(("resolve", escalation_id, outcome, str(resume_outreach)))
        return case

    async def patient_cases(self, token: str, patient_key: str) -> list[dict[str, Any]]:
        self.w.allow("escalation", token, clinic_of(patient_key))
        return [c for c in self.w.cases.values() if c["patient_key"] == patient_key]

    async def route(
        self, token: str, clinic_id: str, case_type: str, severity: str
    ) -> dict[str, Any]:
        self.w.allow("escalation", token, clinic_id)
        nobody = {"rule_id": None, "rotation_id": None, "page_at": None, "escalation_chain": []}
        return copy.deepcopy(self.w.routes.get((clinic_id, case_type), nobody))


class FakeMessenger(MessengerApi):
    def __init__(self, world: World) -> None:
        self.w = world

    def _conversation(self, token: str, patient_key: str) -> list[dict[str, Any]]:
        self.w.allow("messenger", token, clinic_of(patient_key))
        return self.w.conversations.setdefault(patient_key, [])

    async def inbox(self, token: str, clinic_id: str, view: str) -> list[dict[str, Any]]:
        subject = self.w.allow("messenger", token, clinic_id)
        out = []
        for pk, state in self.w.inbox.items():
            if clinic_of(pk) != clinic_id:
                continue
            if view == "handled":
                if state.get("handled_by"):
                    out.append({"patient_key": pk, **state})
                continue
            if state.get("handled_by") or (view == "mine" and state.get("assigned_to") != subject):
                continue
            last = [m for m in self.w.conversations.get(pk, []) if m["direction"] == "inbound"]
            out.append(
                {
                    "patient_key": pk,
                    "words": last[-1]["body"],
                    "reading": last[-1].get("reading"),
                    "received_at": last[-1]["at"],
                    "waiting_since": last[0]["at"],
                    "waiting_replies": len(last),
                    "red_flag": any(m.get("intent") == "red_flag" for m in last),
                    "assigned_to": state.get("assigned_to"),
                }
            )
        return out

    async def inbox_conversation(self, token: str, patient_key: str) -> dict[str, Any]:
        messages = copy.deepcopy(self._conversation(token, patient_key))
        state = self.w.inbox.get(patient_key, {})
        return {
            "patient_key": patient_key,
            "assigned_to": state.get("assigned_to"),
            "handled_by": state.get("handled_by"),
            "handled_at": state.get("handled_at"),
            "waiting": not state.get("handled_by"),
            "messages": messages,
        }

    async def reply(
        self, token: str, patient_key: str, body: str, reply_key: str, mark_handled: bool
    ) -> dict[str, Any]:
        self.w.allow("messenger", token, clinic_of(patient_key), "operator")
        if self.w.refuse_reply is not None:
            raise ApiError("messenger", 409, self.w.refuse_reply)
        who = _who(token)[0]
        messages = self._conversation(token, patient_key)
        message_id = f"staff-{reply_key}"
        duplicate = any(m["message_id"] == message_id for m in messages)
        if not duplicate:
            messages.append(
                {
                    "message_id": message_id,
                    "direction": "outbound",
                    "body": body.strip(),
                    "author": who,
                    "at": NOW.isoformat(),
                    "status": "queued",
                    "channel": "sms",
                    "step": None,
                }
            )
            self.w.calls.append(("reply", patient_key, who, body.strip()))
        if mark_handled:
            self.w.inbox.setdefault(patient_key, {})["handled_by"] = who
        return {"message_id": message_id, "status": "queued", "duplicate": duplicate}

    async def mark_handled(self, token: str, patient_key: str) -> dict[str, Any]:
        who = self.w.allow("messenger", token, clinic_of(patient_key), "operator")
        self.w.inbox.setdefault(patient_key, {}).update(handled_by=who, handled_at=NOW.isoformat())
        self.w.calls.append(("handled", patient_key, who))
        return {"patient_key": patient_key}

    async def assign(self, token: str, patient_key: str, to: str | None) -> dict[str, Any]:
        self.w.allow("messenger", token, clinic_of(patient_key), "operator")
        self.w.inbox.setdefault(patient_key, {})["assigned_to"] = to
        self.w.calls.append(("assign", patient_key, str(to)))
        return {"patient_key": patient_key, "assigned_to": to}

    async def conversation(self, token: str, patient_key: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self._conversation(token, patient_key))

    async def consent(self, token: str, patient_key: str) -> list[dict[str, Any]]:
        self.w.allow("messenger", token, clinic_of(patient_key))
        return list(self.w.consent.get(patient_key, []))

    async def contact(self, token: str, patient_key: str) -> dict[str, Any] | None:
        self.w.allow("messenger", token, clinic_of(patient_key))
        return self.w.contacts.get(patient_key)

    async def templates(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        self.w.allow("messenger", token, clinic_id)
        return [t for t in self.w.templates if t.get("clinic_id") in (None, clinic_id)]

    async def lint(self, token: str, template: dict[str, Any]) -> dict[str, Any]:
        bad = "biopsy" in template.get("body", "").lower()
        issues = [{"rule": "condition_word", "message": "names a condition"}] if bad else []
        return {"ok": not bad, "issues": issues}

    async def approve(self, token: str, template_id: int) -> dict[str, Any]:
        found = next(t for t in self.w.templates if t["template_id"] == template_id)
        self.w.allow("messenger", token, found.get("clinic_id") or "*", "admin")
        if found["status"] != "draft":
            raise ApiError("messenger", 409, "only a draft can be approved")
        found["status"] = "approved"
        self.w.calls.append(("approve", str(template_id)))
        return found


class FakeSegmenter(SegmenterApi):
    def __init__(self, world: World) -> None:
        self.w = world

    async def explain(self, token: str, patient_key: str) -> dict[str, Any] | None:
        self.w.allow("segmenter", token, clinic_of(patient_key))
        return self.w.explain.get(patient_key)

    async def journey(self, token: str, patient_key: str) -> dict[str, Any] | None:
        self.w.allow("segmenter", token, clinic_of(patient_key))
        return {
            "appointments": [],
            "visits": [],
            "follow_ups": [],
            "treatment_plans": [],
            "questions": [],
        }

    async def segments(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        self.w.allow("segmenter", token, clinic_id)
        return [
            {
                "segment": "cancelled_not_rescheduled",
                "kind": "reactivation",
                "rule": "cancelled and nothing replaced it",
                "memberships": {"open": 3},
            },
            {
                "segment": "follow_up_not_booked",
                "kind": "recall",
                "rule": "a follow-up recommended, nothing booked",
                "memberships": {},
            },
        ]

    async def params(self, token: str, clinic_id: str) -> dict[str, Any]:
        self.w.allow("segmenter", token, clinic_id)
        return copy.deepcopy(
            self.w.params.setdefault(
                clinic_id,
                {
                    "clinic_id": clinic_id,
                    "version": 0,
                    "overridden": [],
                    "parameters": {
                        "general": {
                            "priority": ["cancelled_not_rescheduled"],
                            "recovery_lookback_days": 365,
                        },
                        "cancelled_not_rescheduled": {
                            "enabled": True,
                            "delay_hours": 2,
                            "window_days": 30,
                        },
                    },
                },
            )
        )

    async def put_params(
        self, token: str, clinic_id: str, block: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        self.w.allow("segmenter", token, clinic_id, "admin")
        if values.get("window_days", 1) < 1:
            raise ApiError("segmenter", 422, f"{block}.window_days: Input should be >= 1")
        stored = self.w.params[clinic_id]
        stored["parameters"][block] = values
        stored["overridden"] = sorted({*stored["overridden"], block})
        self.w.calls.append(("params", clinic_id, block))
        return stored

    async def preview(self, token: str, clinic_id: str, segment: str, days: int) -> dict[str, Any]:
        self.w.allow("segmenter", token, clinic_id)
        return {
            "total": 1,
            "patients": [
                {
                    "patient_key": f"{clinic_id}:p-soon",
                    "surfaces_at": NOW.isoformat(),
                    "reason": "cancelled a skin check on 1 March",
                    "outlook": "becomes the primary segment",
                }
            ],
        }


class FakeSequencer(SequencerApi):
    def __init__(self, world: World) -> None:
        self.w = world

    async def outreach(self, token: str, patient_key: str) -> dict[str, Any]:
        self.w.allow("sequencer", token, clinic_of(patient_key))
        return copy.deepcopy(self.w.outreach.get(patient_key, {"sequences": []}))

    async def actions(self, token: str, patient_key: str) -> list[dict[str, Any]]:
        self.w.allow("sequencer", token, clinic_of(patient_key))
        return list(self.w.actions.get(patient_key, []))

    async def act(
        self, token: str, patient_key: str, action: str, reason: str, note: str
    ) -> dict[str, Any]:
        who = self.w.allow("sequencer", token, clinic_of(patient_key), "operator")
        self.w.outreach.setdefault(patient_key, {"sequences": []})["paused_by_staff"] = (
            action == "pause"
        )
        self.w.actions.setdefault(patient_key, []).append(
            {
                "action": action,
                "reason": reason,
                "note": note or None,
                "actor": who,
                "at": NOW.isoformat(),
            }
        )
        self.w.calls.append(("outreach", patient_key, action, reason))
        return {"patient_key": patient_key}

    async def workflows(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        self.w.allow("sequencer", token, clinic_id)
        return copy.deepcopy(self.w.workflows)

    async def preview(self, token: str, clinic_id: str, days: int, limit: int) -> dict[str, Any]:
        self.w.allow("sequencer", token, clinic_id)
        return {
            "steps": [
                {
                    "patient_key": f"{clinic_id}:p-next",
                    "at": NOW.isoformat(),
                    "step": 1,
                    "workflow_key": "cancellation_recovery",
                    "channel": "sms",
                    "why": "cancelled, not rescheduled",
                }
            ]
        }


class FakeMetrics(MetricsApi):
    def __init__(self, world: World) -> None:
        self.w = world

    async def segments(self, token: str, clinic_id: str) -> list[dict[str, Any]]:
        self.w.allow("metrics", token, clinic_id)
        return list(self.w.funnel.get(clinic_id, []))

    async def pilot_report(self, token: str, pilot_id: str) -> dict[str, Any] | None:
        report, pilot = self.w.pilot_reports.get(pilot_id), self.w.pilot_store.get(pilot_id)
        if report is None or pilot is None:
            return None  # nobody assigned: metrics has no such pilot
        try:
            self.w.allow("metrics", token, pilot.clinic_id)
        except ApiError:
            raise ApiError(
                "metrics", 404, "no such pilot in the clinics this credential covers"
            ) from None
        return copy.deepcopy(report)


def fake_apis(world: World) -> Apis:
    return Apis(
        escalation=FakeEscalation(world),
        messenger=FakeMessenger(world),
        segmenter=FakeSegmenter(world),
        sequencer=FakeSequencer(world),
        metrics=FakeMetrics(world),
        pilots=FakePilots(world),
    )
