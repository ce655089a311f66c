"""A clinic's escalation set-up: business hours and SLAs, routing rules, notifiers, audit.

Reading hours and rules needs any role in the clinic; changing them, and anything about
notifiers, needs ``admin``. A notifier's secret is write-only.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.escalation import domain
from services.escalation.api.deps import EscalationDep, unprocessable
from services.escalation.domain import AuditEntry, BusinessHours, Hours, PageWhen, RoutingRule
from services.escalation.live_routes import refuse_sandbox_routes
from services.escalation.notifiers.config import (
    SECRET_ENV_PATTERN,
    SETTINGS,
    NotifierKind,
    check_destination,
    secret_env_problem,
)
from services.escalation.repository import audit, notifiers, setup
from services.escalation.workflow import load_setup
from shared.auth import Admin, CurrentPrincipal, Operator, require_clinic
from shared.events.common import Id, TimeZoneName
from shared.events.escalations import CaseType, Severity
from shared.ids import ClinicId
from shared.outbound import OutboundRefused

router = APIRouter(tags=["clinic set-up"])
SECRET_MAX = 2000


class ClinicBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time_zone: TimeZoneName
    opens: time = time(8, 0)
    closes: time = time(18, 0)
    open_days: list[Annotated[int, Field(ge=0, le=6)]] = Field(default=[0, 1, 2, 3, 4])
    ack_minutes: dict[Severity, Annotated[int, Field(ge=1, le=10080)]] = Field(default_factory=dict)
    default_notifiers: list[Id] = Field(default=["sandbox"], min_length=1, max_length=5)

    @model_validator(mode="after")
    def _opens_first(self) -> ClinicBody:
        if self.closes <= self.opens:
            raise ValueError("closes must be after opens (same day)")
        return self


class RuleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_id: Id
    priority: int = Field(ge=0, le=100_000)
    rotation_id: Id
    case_types: list[CaseType] = Field(default_factory=list)  # empty: any
    severities: list[Severity] = Field(default_factory=list)  # empty: any
    hours: Hours = Hours.any
    page: PageWhen = PageWhen.now


class RulesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[RuleBody] = Field(max_length=100)


class PreviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_type: CaseType
    severity: Severity
    at: AwareDatetime | None = None


class NotifierBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: NotifierKind
    settings: dict[str, Any] = Field(default_factory=dict)
    secret_env: str | None = Field(default=None, pattern=SECRET_ENV_PATTERN)
    secret: str | None = None  # checked in the route so a refusal never echoes it


def _clinic_view(clinic: setup.Clinic, policy: domain.AckPolicy, *, set_up: bool) -> dict[str, Any]:
    h = clinic.hours
    return {
        "clinic_id": clinic.clinic_id,
        # False until the clinic has a real notifier: in production its pages go to the
        # deployment's fallback notifier meanwhile (services/escalation/fallback.py).
        "set_up": set_up,
        "time_zone": h.time_zone,
        "opens": h.opens.isoformat(timespec="minutes"),
        "closes": h.closes.isoformat(timespec="minutes"),
        "open_days": sorted(h.days),
        "ack_minutes": {s.value: policy.minutes[s] for s in Severity},
        "ack_minutes_overrides": dict(clinic.ack_minutes),
        "default_notifiers": list(clinic.default_notifiers),
    }


@router.get("/clinics/{clinic_id}/settings", summary="Business hours, SLAs, default notifiers")
async def get_settings(
    clinic_id: ClinicId, esc: EscalationDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    async with esc.runtime.sessions() as session, session.begin():
        ctx = await load_setup(session, esc, clinic_id, esc.clock.now())
        set_up = await notifiers.has_real(session, clinic_id)
    return _clinic_view(ctx.clinic, ctx.policy, set_up=set_up)


@router.put("/clinics/{clinic_id}/settings", summary="Change hours, SLAs, default notifiers")
async def put_settings(
    clinic_id: ClinicId, body: ClinicBody, esc: EscalationDep, principal: Admin
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    hours = BusinessHours(body.time_zone, body.opens, body.closes, frozenset(body.open_days))
    minutes = {s.value: m for s, m in body.ack_minutes.items()}
    clinic = setup.Clinic(clinic_id, hours, minutes, tuple(body.default_notifiers))
    now = esc.clock.now()
    async with esc.runtime.sessions() as session, session.begin():
        await load_setup(session, esc, clinic_id, now)
        known = {
            n.notifier_id for n in await notifiers.load(session, clinic_id, body.default_notifiers)
        }
        if missing := [n for n in body.default_notifiers if n not in known]:
            raise HTTPException(422, f"default_notifiers: not configured: {', '.join(missing)}")
        await setup.update_clinic(session, clinic)
        await refuse_sandbox_routes(esc.runtime, session, clinic_id)
        entry = AuditEntry("settings_saved", principal.subject, {"time_zone": body.time_zone})
        await audit.add(session, clinic_id, None, now, [entry])
        ctx = await load_setup(session, esc, clinic_id, now)
        set_up = await notifiers.has_real(session, clinic_id)
    return _clinic_view(ctx.clinic, ctx.policy, set_up=set_up)


def _rule_view(rule: RoutingRule) -> dict[str, Any]:
    doc = asdict(rule)
    doc["case_types"] = sorted(rule.case_types)
    doc["severities"] = sorted(rule.severities)
    return doc


@router.get("/clinics/{clinic_id}/routing-rules", summary="Routing rules, in the order tried")
async def get_rules(
    clinic_id: ClinicId, esc: EscalationDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    async with esc.runtime.sessions() as session, session.begin():
        await load_setup(session, esc, clinic_id, esc.clock.now())
        rules = await setup.load_rules(session, clinic_id)
    return {"clinic_id": clinic_id, "rules": [_rule_view(r) for r in rules]}


@router.put("/clinics/{clinic_id}/routing-rules", summary="Replace the routing rules")
async def put_rules(
    clinic_id: ClinicId, body: RulesBody, esc: EscalationDep, principal: Admin
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    if len({r.rule_id for r in body.rules}) != len(body.rules):
        raise HTTPException(422, "rules: rule_id must be unique")
    rules = [
        RoutingRule(
            r.rule_id,
            r.priority,
            r.rotation_id,
            frozenset(r.case_types),
            frozenset(r.severities),
            r.hours,
            r.page,
        )
        for r in body.rules
    ]
    now = esc.clock.now()
    async with esc.runtime.sessions() as session, session.begin():
        ctx = await load_setup(session, esc, clinic_id, now)
        if unknown := sorted({r.rotation_id for r in rules} - set(ctx.rotations)):
            raise HTTPException(422, f"rules: unknown rotation_id: {', '.join(unknown)}")
        await setup.replace_rules(session, clinic_id, rules)
        await refuse_sandbox_routes(esc.runtime, session, clinic_id)
        entry = AuditEntry("routing_rules_saved", principal.subject, {"rules": len(rules)})
        await audit.add(session, clinic_id, None, now, [entry])
    return {"clinic_id": clinic_id, "rules": [_rule_view(r) for r in rules]}


@router.post("/clinics/{clinic_id}/routing-rules/preview", summary="Where would a case go?")
async def preview(
    clinic_id: ClinicId, body: PreviewBody, esc: EscalationDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    at = body.at or esc.clock.now()
    async with esc.runtime.sessions() as session, session.begin():
        ctx = await load_setup(session, esc, clinic_id, at)
        rules = await setup.load_rules(session, clinic_id)
    found = domain.route(rules, body.case_type, body.severity, ctx.clinic.hours, at)
    if found is None:
        return {"rule_id": None, "rotation_id": None, "page_at": None, "escalation_chain": []}
    chain = domain.escalation_chain(ctx.rotations, found.rotation_id, found.page_at)
    return {
        **asdict(found),
        "in_hours": ctx.clinic.hours.is_open(at),
        "escalation_chain": [asdict(t) for t in chain],
    }


@router.get("/clinics/{clinic_id}/notifiers", summary="Notifiers (secrets are never shown)")
async def get_notifiers(
    clinic_id: ClinicId, esc: EscalationDep, principal: Admin
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    async with esc.runtime.sessions() as session:
        found = await notifiers.public(session, clinic_id)
    return {"clinic_id": clinic_id, "notifiers": found}


@router.put("/clinics/{clinic_id}/notifiers/{notifier_id}", summary="Create or replace a notifier")
async def put_notifier(
    clinic_id: ClinicId,
    notifier_id: Annotated[
        str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.\-]*$")
    ],
    body: NotifierBody,
    esc: EscalationDep,
    principal: Admin,
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    if notifier_id == "sandbox":
        raise HTTPException(422, "notifier_id: 'sandbox' is built in")
    if body.secret is not None and body.secret_env is not None:
        raise HTTPException(422, "give secret or secret_env, not both")
    if body.secret is not None and not 1 <= len(body.secret) <= SECRET_MAX:
        raise HTTPException(422, f"secret: 1 to {SECRET_MAX} characters")
    if body.secret_env is not None and (problem := secret_env_problem(clinic_id, body.secret_env)):
        raise HTTPException(422, problem)
    try:
        parsed = SETTINGS[body.kind].model_validate(body.settings)
    except ValidationError as exc:
        raise unprocessable(exc, "settings.") from None
    try:
        await check_destination(esc.config.outbound_policy(), body.kind, parsed, body.secret)
    except OutboundRefused as exc:
        where = "secret" if body.kind == "slack" else "settings"
        raise HTTPException(422, f"{where}: {exc}") from None
    settings = parsed.model_dump(mode="json")
    now = esc.clock.now()
    async with esc.runtime.sessions() as session, session.begin():
        await load_setup(session, esc, clinic_id, now)
        await notifiers.upsert(
            session,
            clinic_id,
            notifier_id,
            body.kind,
            settings,
            secret_env=body.secret_env,
            secret_value=body.secret,
        )
        detail = {
            "notifier_id": notifier_id,
            "kind": body.kind,
            "secret_changed": body.secret is not None or body.secret_env is not None,
        }
        await audit.add(
            session, clinic_id, None, now, [AuditEntry("notifier_saved", principal.subject, detail)]
        )
        found = await notifiers.public(session, clinic_id)
    return next(n for n in found if n["notifier_id"] == notifier_id)


@router.get("/clinics/{clinic_id}/audit", summary="The clinic's audit trail, newest first")
async def clinic_audit(
    clinic_id: ClinicId,
    esc: EscalationDep,
    principal: Operator,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    require_clinic(principal, clinic_id)
    async with esc.runtime.sessions() as session:
        rows = await audit.for_clinic(session, clinic_id, limit)
    return {"clinic_id": clinic_id, "audit": rows}
