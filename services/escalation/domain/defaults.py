"""What a clinic starts with the first time Revisit sees it (all editable through the API).

Four rotations and a rule set that sends each kind of case to the people who answer it in a
dermatology practice. Each default rotation has one placeholder member, ``<rotation>.duty``
(the shared duty phone or mailbox), paged through the sandbox notifier until an admin puts real
people and a real notifier on it: a case is never left with nobody to page.
"""

from __future__ import annotations

from datetime import date, time

from services.escalation.domain.rotations import Member, Rotation
from services.escalation.domain.routing import BusinessHours, Hours, PageWhen, RoutingRule
from shared.events.escalations import CaseType, Severity

DERMATOLOGIST = "dermatologist-on-call"
NURSE_LINE = "nurse-line"
PRACTICE_MANAGER = "practice-manager"
FRONT_DESK = "front-desk"

_NAMES = {
    DERMATOLOGIST: "On-call dermatologist",
    NURSE_LINE: "Nurse line",
    PRACTICE_MANAGER: "Practice manager",
    FRONT_DESK: "Front desk",
}
_FALLBACKS = {
    DERMATOLOGIST: PRACTICE_MANAGER,  # someone who can always find a doctor
    NURSE_LINE: DERMATOLOGIST,
    FRONT_DESK: PRACTICE_MANAGER,
    PRACTICE_MANAGER: None,
}
SERVICE_RECOVERY = frozenset({CaseType.poor_experience, CaseType.unresolved_concern})
ANCHOR = date(2024, 1, 1)  # a Monday


def default_hours(time_zone: str) -> BusinessHours:
    return BusinessHours(time_zone, time(8, 0), time(18, 0), frozenset(range(5)))


def default_rotations(time_zone: str) -> list[Rotation]:
    return [
        Rotation(
            rotation_id=rid,
            name=name,
            time_zone=time_zone,
            handoff_time=time(8, 0),
            shift_days=7,
            anchor_date=ANCHOR,
            members=(Member(f"{rid}.duty"),),
            fallback_rotation_id=_FALLBACKS[rid],
        )
        for rid, name in _NAMES.items()
    ]


def default_rules() -> list[RoutingRule]:
    red = frozenset({CaseType.red_flag})
    return [
        # In hours the triage nurse answers red flags first and pulls in a doctor.
        RoutingRule("red-flag-in-hours", 10, NURSE_LINE, red, hours=Hours.in_hours),
        RoutingRule("red-flag-after-hours", 20, DERMATOLOGIST, red),
        RoutingRule(
            "urgent-after-hours",
            30,
            DERMATOLOGIST,
            severities=frozenset({Severity.urgent}),
            hours=Hours.after_hours,
        ),
        RoutingRule(
            "clinical-question",
            40,
            NURSE_LINE,
            frozenset({CaseType.clinical_question}),
            page=PageWhen.in_hours,
        ),
        RoutingRule(
            "service-recovery", 50, PRACTICE_MANAGER, SERVICE_RECOVERY, page=PageWhen.in_hours
        ),
        RoutingRule("everything-else", 1000, FRONT_DESK, page=PageWhen.in_hours),
    ]
