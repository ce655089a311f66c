"""Service recovery: a recorded poor experience goes to a person before any rebooking message.

The latest poor feedback opens a recovery (one EscalationRaised, id derived from the patient
and the feedback record, so a replay never raises it twice), however long ago it was recorded:
a poor survey at a last visit 18 months back still comes before a lapsed-patient message.
While it is open every need is held, in every segment. It closes when the person resolves the
case and lets outreach resume, when the patient records better feedback later, or when the
patient comes back for a visit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.segmenter.domain.journey import Journey
from services.segmenter.domain.params import ClinicParams
from shared.events.common import ServiceLine
from shared.events.ehr import Sentiment
from shared.events.escalations import CaseType, EscalationRaised

# A fixed phrase (escalations.Summary): never the patient's words, never a diagnosis.
SUMMARY = "Poor experience recorded: contact the patient before any rebooking outreach"


def escalation_id(patient_key: str, feedback_id: str) -> str:
    raw = f"{patient_key}|service_recovery|{feedback_id}"
    return f"rec-{hashlib.sha256(raw.encode()).hexdigest()[:24]}"


@dataclass(frozen=True)
class Recovery:
    escalation_id: str
    feedback_id: str
    since: datetime
    active: bool
    lifted_because: str | None
    service_line: ServiceLine | None

    def raised_event(self, params: ClinicParams) -> EscalationRaised:
        return EscalationRaised(
            escalation_id=self.escalation_id,
            case_type=CaseType.poor_experience,
            severity=params.general.recovery_severity,
            summary=SUMMARY,
            service_line=self.service_line,
        )


def assess(
    journey: Journey, params: ClinicParams, now: datetime, raised: frozenset[str]
) -> Recovery | None:
    """The patient's service recovery, if the latest poor feedback calls for one."""
    poor = [f for f in journey.feedback if f.payload.sentiment is Sentiment.poor]
    if not poor or journey.deceased or journey.inactive:
        return None
    latest = max(poor, key=lambda f: (f.first_at, f.payload.feedback_id))
    feedback = latest.payload
    case = escalation_id(journey.patient_key, feedback.feedback_id)
    since = latest.first_at
    days = params.general.recovery_lookback_days
    if days is not None and case not in raised and since < now - timedelta(days=days):
        return None  # older than this clinic chose to call patients about
    lifted = None
    resolution = journey.resolutions.get(case)
    if resolution is not None and resolution.resume_outreach:
        lifted = f"case resolved ({resolution.outcome.value}) and outreach may resume"
    elif any(
        f.payload.sentiment is not Sentiment.poor and f.first_at > since for f in journey.feedback
    ):
        lifted = "the patient recorded better feedback since"
    elif any(v.completed_at > since for v in journey.visits):
        lifted = "the patient has come back for a visit since"
    visit = journey.visit(feedback.visit_id)
    return Recovery(
        escalation_id=case,
        feedback_id=feedback.feedback_id,
        since=since,
        active=lifted is None,
        lifted_because=lifted,
        service_line=visit.primary_line if visit else None,
    )
