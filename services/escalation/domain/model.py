"""The case a person must answer, and what a decision about it asks the shell to do.

Everything here is pure and frozen: a decision returns a new ``Case`` plus the events, pages,
timers and audit lines that follow from it; the shell (``workflow.py``) saves and stages them in
one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.events.envelope import Payload
from shared.events.escalations import CaseType, Outcome, Severity

SEVERITY_ORDER: Mapping[Severity, int] = {
    Severity.urgent: 0,
    Severity.high: 1,
    Severity.normal: 2,
    Severity.low: 3,
}


class CaseState(StrEnum):
    queued = "queued"  # waiting: for business hours, or for a rotation with someone on call
    paging = "paging"  # a responder has been paged and has not acknowledged yet
    acknowledged = "acknowledged"  # a responder owns it
    resolved = "resolved"  # closed with an outcome


OPEN_STATES = frozenset({CaseState.queued, CaseState.paging, CaseState.acknowledged})


class Action(StrEnum):
    """What a page delivery tells a notifier (PagerDuty's three event actions)."""

    trigger = "trigger"
    acknowledge = "acknowledge"
    resolve = "resolve"


class CaseConflict(Exception):
    """The action does not fit the case's state; the message is PHI-free and safe to return."""


@dataclass(frozen=True)
class Target:
    """Who to page: a responder (opaque staff id) reached through a rotation's notifiers."""

    rotation_id: str
    responder_id: str


@dataclass(frozen=True)
class Case:
    escalation_id: str
    clinic_id: str
    patient_key: str
    case_type: CaseType
    severity: Severity
    summary: str
    raised_at: datetime
    state: CaseState = CaseState.queued
    rule_id: str | None = None
    rotation_id: str | None = None
    responder_id: str | None = None
    attempt: int = 0  # pages sent so far (SLA re-pages and reassignments)
    step: int = 0  # position in the rotation's escalation chain of the last SLA-driven page
    ack_due_at: datetime | None = None
    page_at: datetime | None = None  # a first page deferred to business hours
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    outcome: Outcome | None = None
    resume_outreach: bool | None = None
    exhausted: bool = False  # every allowed page went unanswered; it stays top of the queue
    raised_event_id: uuid.UUID | None = None
    correlation_id: uuid.UUID | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass(frozen=True)
class PageOrder:
    """Page ``target`` now: one trigger delivery per notifier of the target's rotation."""

    attempt: int
    target: Target


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit trail. ``detail`` holds ids and codes only, never free text."""

    action: str
    actor: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    case: Case
    events: tuple[Payload, ...] = ()
    page: PageOrder | None = None
    lifecycle: Action | None = None  # tell notifiers that saw a trigger: acknowledged / resolved
    ack_timer_at: datetime | None = None  # (re)schedule the acknowledgement SLA timer
    page_timer_at: datetime | None = None  # schedule a deferred first page
    cancel_timers: bool = False
    audit: tuple[AuditEntry, ...] = ()
    changed: bool = True


SYSTEM = "system"
