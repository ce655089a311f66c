"""What admins may change: each clinic's outreach rules, states' allowed hours, workflows.

These are the API's and the database's shapes (pydantic, validated, JSON); ``rules_for`` and
``WorkflowDefinition.to_workflow`` turn them into the pure core's ``Rules`` and ``Workflow``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from services.sequencer.domain.rules import AllowedHours, Rules
from services.sequencer.domain.workflows import (
    MAX_STEPS,
    PLAYBOOK,
    RECOVERY_PLAYBOOK,
    SERVICE_RECOVERY,
    Route,
    Workflow,
    WorkflowStep,
)
from shared.events.common import (
    Channel,
    ClinicalUrgency,
    Key,
    Segment,
    ServiceLine,
    StateCode,
    TimeZoneName,
)
from shared.events.outreach import Tone
from shared.outreach_policy import DEFAULT_STATE_HOURS, LocalTime


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClinicRules(Model):
    """A clinic's outreach rules; every field left out keeps the service default."""

    time_zone: TimeZoneName | None = Field(
        None, description="The clinic's zone: quiet hours use it when a patient's is unknown."
    )
    state: StateCode | None = Field(
        None, description="US state whose allowed hours apply on top of the clinic's (e.g. FL)."
    )
    allowed_from: LocalTime | None = Field(None, description="Local time outreach may start.")
    allowed_until: LocalTime | None = Field(None, description="Local time outreach must stop.")
    per_day: Annotated[int, Field(ge=0, le=10)] | None = None
    per_week: Annotated[int, Field(ge=0, le=30)] | None = None
    rest_days: Annotated[int, Field(ge=0, le=365)] | None = None
    decline_rest_days: Annotated[int, Field(ge=0, le=730)] | None = None
    snooze_default_days: Annotated[int, Field(ge=1, le=180)] | None = None
    snooze_max_days: Annotated[int, Field(ge=1, le=365)] | None = None
    concern_hold_hours: Annotated[int, Field(ge=0, le=720)] | None = None
    booking_hold_days: Annotated[int, Field(ge=0, le=60)] | None = None
    close_after_hours: Annotated[int, Field(ge=1, le=720)] | None = None
    recovery_head_start_hours: Annotated[int, Field(ge=0, le=720)] | None = None

    @model_validator(mode="after")
    def _hours_in_order(self) -> ClinicRules:
        start, end = self.allowed_from, self.allowed_until
        if start is not None and end is not None and not start < end:
            raise ValueError("allowed_from must be before allowed_until")
        return self


class StateHours(Model):
    allowed_from: LocalTime
    allowed_until: LocalTime
    note: Annotated[str, StringConstraints(max_length=200)] = ""

    @model_validator(mode="after")
    def _in_order(self) -> StateHours:
        if not self.allowed_from < self.allowed_until:
            raise ValueError("allowed_from must be before allowed_until")
        return self


_NUMERIC = (
    "per_day",
    "per_week",
    "rest_days",
    "decline_rest_days",
    "snooze_default_days",
    "snooze_max_days",
    "concern_hold_hours",
    "booking_hold_days",
    "close_after_hours",
    "recovery_head_start_hours",
)


def rules_for(base: Rules, clinic: ClinicRules | None, states: dict[str, StateHours]) -> Rules:
    """The service defaults, overridden by the clinic, narrowed by the clinic's state; every
    state's hours also narrow them for the patients whose address is in that state."""
    table = {code: (h.allowed_from, h.allowed_until) for code, h in states.items()}
    if clinic is None:
        return replace(base, state_hours=table) if states else base
    changes: dict[str, object] = {
        name: getattr(clinic, name) for name in _NUMERIC if getattr(clinic, name) is not None
    }
    if clinic.time_zone:
        changes["zone"] = clinic.time_zone
    hours = AllowedHours(
        clinic.allowed_from or base.hours.start, clinic.allowed_until or base.hours.end
    )
    state = states.get(clinic.state) if clinic.state else None
    if state is not None:
        hours = hours.narrowed_by(AllowedHours(state.allowed_from, state.allowed_until))
    changes["hours"] = hours
    changes["clinic_state"] = clinic.state
    changes["state_hours"] = table
    return replace(base, **changes)  # type: ignore[arg-type]


def default_state_hours() -> dict[str, StateHours]:
    return {
        code: StateHours(allowed_from=a, allowed_until=b, note=note)
        for code, (a, b, note) in DEFAULT_STATE_HOURS.items()
    }


# --- workflows ---------------------------------------------------------------------------------


class StepDefinition(Model):
    delay_days: Annotated[float, Field(ge=0, le=365)] = Field(
        description="Days after the previous step (step 1: after the need is due)."
    )
    channel: Channel
    fallback: Channel | None = None
    tone: Tone
    urgency: ClinicalUrgency = Field(
        ClinicalUrgency.routine,
        description="A ceiling: the sent urgency is never above the documented one.",
    )
    marketing: bool = Field(False, description="Needs marketing consent; offers only here.")

    @model_validator(mode="after")
    def _fallback_differs(self) -> StepDefinition:
        if self.fallback is not None and self.fallback == self.channel:
            raise ValueError("fallback must differ from channel")
        return self


class RouteDefinition(Model):
    segment: Segment
    service_lines: list[ServiceLine] | None = None


class WorkflowDefinition(Model):
    title: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    description: Annotated[str, StringConstraints(max_length=300)] = ""
    routes: list[RouteDefinition] = Field(default_factory=list)
    steps: list[StepDefinition] = Field(min_length=1, max_length=MAX_STEPS)

    def to_workflow(self, key: str, *, custom: bool = True) -> Workflow:
        return Workflow(
            key=key,
            title=self.title,
            description=self.description,
            custom=custom,
            routes=tuple(
                Route(r.segment, frozenset(r.service_lines) if r.service_lines else None)
                for r in self.routes
            ),
            steps=tuple(
                WorkflowStep(
                    step=n,
                    delay=timedelta(days=s.delay_days),
                    channel=s.channel,
                    fallback=s.fallback,
                    tone=s.tone,
                    urgency=s.urgency,
                    marketing=s.marketing,
                    template_key=f"{key}.{n}",
                )
                for n, s in enumerate(self.steps, start=1)
            ),
            playbook=RECOVERY_PLAYBOOK if key == SERVICE_RECOVERY else PLAYBOOK,
        )


WorkflowKey = Key


def describe(wf: Workflow) -> dict[str, object]:
    """A workflow as the API shows it."""
    return {
        "workflow_key": wf.key,
        "title": wf.title,
        "description": wf.description,
        "custom": wf.custom,
        "purpose": "marketing" if wf.marketing else "care",
        "routes": [
            {
                "segment": r.segment.value,
                "service_lines": sorted(x.value for x in r.service_lines)
                if r.service_lines
                else None,
            }
            for r in wf.routes
        ],
        "steps": [
            {
                "step": s.step,
                "delay_days": s.delay / timedelta(days=1),
                "channel": s.channel.value,
                "fallback": s.fallback.value if s.fallback else None,
                "tone": s.tone.value,
                "urgency": s.urgency.value,
                "marketing": s.marketing,
                "template_key": s.template_key,
                "does": wf.playbook.get(s.step, ""),
            }
            for s in wf.steps
        ],
    }
