"""A step's final words: the facts the command carries, put into the approved template, checked.

``step_values`` turns a SendStep (what the eligibility documented, whether it is overdue, the
provider and the service) and what the messenger knows (the patient's name and language, the
practice's name, phone, booking page and time zone) into template values: dates in the
patient's language and the practice's time zone, the reason sentence of ``reasons.py``.
``compose`` renders the template strictly and runs the linter on the final text. Either refusal
names what is wrong (a missing fact's variable, the broken lint rules) and never carries the
patient's details, so it can be logged and reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from services.messenger.domain.linter import lint_final
from services.messenger.domain.reasons import reason_text
from services.messenger.domain.templates import (
    MissingFact,
    Rendered,
    Template,
    day_name,
    month_name,
    render,
    service_name,
)
from shared.events.messages import BlockReason
from shared.events.outreach import SendStep


@dataclass(frozen=True)
class PracticeFacts:
    """What the messenger knows of the practice, for the words."""

    name: str
    phone: str
    booking_url: str | None
    time_zone: str


@dataclass(frozen=True)
class Refused:
    """Why a step's words cannot go: a fact they state is unknown, or the final text broke a
    rule. ``detail`` names variables and rules only (safe to log)."""

    reason: BlockReason
    detail: str


def source_day(cmd: SendStep, zone: ZoneInfo) -> date | None:
    """The day the documented source was recorded, in the practice's own time zone."""
    documented = cmd.documented
    if documented is None:
        return None
    if documented.recorded_at is not None:
        return documented.recorded_at.astimezone(zone).date()
    return documented.recorded_on


def step_values(
    cmd: SendStep,
    *,
    first_name: str | None,
    practice: PracticeFacts,
    provider_name: str | None,
    language: str,
    now: datetime,
) -> dict[str, str | None]:
    """The template values of ``cmd`` for a patient reading ``language``; None for each fact
    that is not known (the renderer refuses a sentence that needs it)."""
    zone = ZoneInfo(practice.time_zone)
    today = now.astimezone(zone).date()
    documented = cmd.documented
    recorded = source_day(cmd, zone)
    due = documented.due_on if documented else None
    values: dict[str, str | None] = {
        "first_name": first_name,
        "practice_name": practice.name,
        "practice_phone": practice.phone,
        "provider_name": provider_name,
        "service_name": service_name(cmd.service_line, language),
        "source_date": day_name(recorded, language, today=today) if recorded else None,
        "due_date": day_name(due, language, today=today) if due else None,
        "due_month": month_name(due.month, due.year, language) if due else None,
        "booking_link": practice.booking_url,
    }
    try:
        values["reason"] = reason_text(cmd.workflow_key, documented, cmd.overdue, language, values)
    except MissingFact:
        values["reason"] = None  # a template that says {reason} is refused with the fact
    return values


def compose(
    template: Template,
    cmd: SendStep,
    values: Mapping[str, str | None],
    *,
    sms_max_chars: int,
    first_contact_max_chars: int,
) -> Rendered | Refused:
    """The final words, or why they cannot go."""
    try:
        if "{reason}" in template.body and values.get("reason") is None:
            # Name the underlying fact, not the sentence built from it.
            reason_text(cmd.workflow_key, cmd.documented, cmd.overdue, template.language, values)
        rendered = render(template, values)
    except MissingFact as missing:
        return Refused(BlockReason.missing_fact, f"{{{missing.variable}}}: {missing.why}")
    issues = lint_final(
        template,
        rendered,
        sms_max_chars=sms_max_chars,
        first_contact_max_chars=first_contact_max_chars,
        names=(values.get("practice_name"), values.get("provider_name")),
    )
    if issues:
        rules = ", ".join(sorted({issue.rule for issue in issues}))
        return Refused(BlockReason.words_refused, f"the final text breaks: {rules}")
    return rendered
