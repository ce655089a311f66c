"""The escalation queue as staff read it: red flags first and loud, then by severity and age,
each case with its SLA clock.

"Now" is the escalation service's (it may run on the controlled clock): a case's age in whole
minutes comes with it, so the clock is read as ``raised_at + age`` and is exact to the minute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.console.domain.words import CASE_TYPES, STATES, duration, say

SEVERITY_RANK = {"urgent": 0, "high": 1, "normal": 2, "low": 3}
OPEN = ("queued", "paging", "acknowledged")
DUE_SOON_MINUTES = 2


def instant(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def service_now(case: Mapping[str, Any]) -> datetime:
    """The escalation service's clock when it answered, to the minute."""
    raised = instant(case["raised_at"])
    assert raised is not None
    return raised + timedelta(minutes=int(case.get("age_minutes") or 0))


@dataclass(frozen=True)
class SlaClock:
    """Where a case stands against its acknowledgement deadline."""

    state: str  # held | running | due_soon | overdue | met | closed
    label: str
    seconds_left: int | None = None  # for the page's ticking clock; None when it does not run

    @property
    def alarming(self) -> bool:
        return self.state in ("due_soon", "overdue")


def sla_clock(case: Mapping[str, Any]) -> SlaClock:
    state = case["state"]
    now = service_now(case)
    if state == "resolved":
        return SlaClock("closed", "Closed")
    if state == "acknowledged":
        taken = instant(case.get("acknowledged_at"))
        raised = instant(case["raised_at"])
        after = int((taken - raised).total_seconds() // 60) if taken and raised else 0
        return SlaClock("met", f"Taken after {duration(after)}")
    if case.get("exhausted"):
        return SlaClock("overdue", "Nobody answered the pages")
    due = instant(case.get("ack_due_at"))
    if state == "queued" or due is None:
        page_at = instant(case.get("page_at"))
        if page_at is not None and page_at > now:
            wait = int((page_at - now).total_seconds() // 60)
            return SlaClock("held", f"Held: paged in {duration(wait)}")
        return SlaClock("held", "Waiting for someone on call")
    left = int((due - now).total_seconds())
    if left < 0:
        return SlaClock("overdue", f"Overdue by {duration(-left // 60)}", left)
    if left <= DUE_SOON_MINUTES * 60:
        return SlaClock("due_soon", f"Due in {duration(left // 60)}", left)
    return SlaClock("running", f"Due in {duration(left // 60)}", left)


@dataclass(frozen=True)
class QueueItem:
    escalation_id: str
    clinic_id: str
    patient_key: str
    kind: str
    case_type: str
    severity: str
    summary: str
    state: str
    state_label: str
    age: str
    sla: SlaClock
    responder: str | None
    acknowledged_by: str | None

    @property
    def red_flag(self) -> bool:
        return self.case_type == "red_flag" and self.state in OPEN

    @property
    def loud(self) -> bool:
        """Red flags and cases whose deadline passed are shown loud (and announced)."""
        return self.red_flag or (self.state in OPEN and self.sla.state == "overdue")


def queue_item(case: Mapping[str, Any]) -> QueueItem:
    return QueueItem(
        escalation_id=case["escalation_id"],
        clinic_id=case["clinic_id"],
        patient_key=case["patient_key"],
        kind=say(CASE_TYPES, case["case_type"]),
        case_type=case["case_type"],
        severity=case["severity"],
        summary=case.get("summary") or "",
        state=case["state"],
        state_label=say(STATES, case["state"]),
        age=duration(int(case.get("age_minutes") or 0)),
        sla=sla_clock(case),
        responder=case.get("responder_id"),
        acknowledged_by=case.get("acknowledged_by"),
    )


def _order(case: Mapping[str, Any]) -> tuple[Any, ...]:
    open_ = case["state"] in OPEN
    return (
        not open_,
        not (open_ and case["case_type"] == "red_flag"),
        not (open_ and case.get("exhausted")),
        SEVERITY_RANK.get(case["severity"], 9),
        instant(case["raised_at"]),
        case["escalation_id"],
    )


def order_queue(cases: Iterable[Mapping[str, Any]]) -> list[QueueItem]:
    """Open before resolved; red flags first; then cases nobody answered; severity; oldest."""
    return [queue_item(c) for c in sorted(cases, key=_order)]


def red_flags_waiting(items: Iterable[QueueItem]) -> int:
    return sum(1 for item in items if item.red_flag and item.state != "acknowledged")
