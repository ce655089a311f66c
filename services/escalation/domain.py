"""Pure rules of escalation (skeleton scope): every raised case becomes an open case.

Routing, rotations, paging and SLAs build on this; the invariant already holds that a raised
escalation is never dropped: it is stored open until a person resolves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.events import Envelope
from shared.events.escalations import EscalationRaised, EscalationResolved

SEVERITY_ORDER = {"urgent": 0, "high": 1, "normal": 2, "low": 3}


@dataclass(frozen=True)
class Case:
    escalation_id: str
    clinic_id: str
    patient_key: str
    case_type: str
    severity: str
    summary: str
    raised_at: datetime
    state: str = "open"  # open | resolved
    outcome: str | None = None


def case_from(event: Envelope[Any]) -> Case | None:
    p = event.payload
    if not isinstance(p, EscalationRaised):
        return None
    return Case(
        p.escalation_id,
        event.clinic_id,
        event.patient_key,
        p.case_type.value,
        p.severity.value,
        p.summary,
        event.occurred_at,
    )


def resolution_of(event: Envelope[Any]) -> tuple[str, str] | None:
    p = event.payload
    return (p.escalation_id, p.outcome.value) if isinstance(p, EscalationResolved) else None
