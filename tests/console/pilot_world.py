"""Each clinic's pilot in the route tests' world: running, in week 4, with what the sequencer
screened and counted, the metrics report (objections referring to a real reply of the world's
conversations), the workflow its segment gets and the escalation routes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.sequencer.domain.pilots import Pilot, PilotStatus
from shared.events.common import Initiator, Segment
from shared.events.pilot import CohortFilters
from tests.console.fakes import NOW, World

STARTED = NOW - timedelta(days=22)  # week 4: compare


def pilot_of(clinic: str) -> Pilot:
    return Pilot(
        pilot_id=f"pilot-{clinic}",
        clinic_id=clinic,
        name="Cancellations, March",
        segment=Segment.cancelled_not_rescheduled,
        cohort_size=200,
        holdout_share=0.2,
        days=30,
        status=PilotStatus.running,
        starts_at=STARTED,
        ends_at=STARTED + timedelta(days=30),
        enrolled=12,
        cohort=CohortFilters(cancelled_by=(Initiator.patient,)),
        launched_at=STARTED + timedelta(days=7),
    )


def _screening(patient_key: str, verdict: str, arm: str | None, why: list[str]) -> dict[str, Any]:
    return {
        "patient_key": patient_key,
        "eligibility_id": f"elig-{patient_key}",
        "verdict": verdict,
        "arm": arm,
        "why": why,
        "segment": "cancelled_not_rescheduled",
        "service_line": "skin_check",
        "provider_id": "dr-1",
        "location_id": "loc-1",
        "urgency": "routine",
        "due_on": "2026-02-20",
        "cancellation_reason": "cost",
        "cancelled_by": "patient",
        "reason": "You cancelled your skin check on 20 February and it was not rebooked.",
        "screened_at": (STARTED + timedelta(days=8)).isoformat(),
    }


def _arm(assigned: int, rebooked: int, completed: int, revenue: int) -> dict[str, Any]:
    return {
        "assigned": assigned,
        "messaged": assigned,
        "replied": assigned // 2,
        "rebooked": rebooked,
        "completed": completed,
        "revenue_cents": revenue,
        "rebooked_rate": rebooked / assigned,
        "completed_rate": completed / assigned,
    }


def _difference(figure: str, value: float, low: float, high: float) -> dict[str, Any]:
    return {"figure": figure, "difference": value, "ci_low": low, "ci_high": high}


def _week(
    arm: str, assigned: int, messaged: int, replies: int, objections: int, rebooked: int
) -> dict[str, Any]:
    return {
        "week": 2,
        "arm": arm,
        "assigned": assigned,
        "messaged": messaged,
        "replies": replies,
        "objections": objections,
        "rebooked": rebooked,
        "opt_outs": 0,
        "phase": "launch",
    }


def report(patient_key: str) -> dict[str, Any]:
    previous = {"from": (STARTED - timedelta(days=21)).isoformat(), "to": STARTED.isoformat()}
    return {
        "report": "pilot",
        "arms": {"outreach": _arm(10, 4, 3, 120000), "holdout": _arm(2, 0, 0, 0)},
        "comparison": [
            _difference("rebooked_rate", 0.4, -0.1, 0.7),
            _difference("completed_rate", 0.3, -0.2, 0.6),
        ],
        "previous_process": {
            "label": "observational: the same cohort definition, eligible in the weeks before",
            "cohort": {**previous, **_arm(20, 2, 1, 30000), "screened_out": 5, "unscreened": 0},
            "comparison": [
                _difference("rebooked_rate", 0.3, 0.02, 0.58),
                _difference("completed_rate", 0.25, -0.01, 0.5),
            ],
        },
        "causal_claim": {"supported_by": "holdout", "why": "Only the holdout supports it."},
        "weeks": [_week("outreach", 6, 6, 2, 1, 1), _week("holdout", 1, 0, 0, 0, 0)],
        "objections": [
            {
                "barrier": "cost",
                "intent": None,
                "replies": 2,
                "examples": [
                    {
                        "patient_key": patient_key,
                        "reply_id": f"in-{patient_key}",
                        "at": (NOW - timedelta(minutes=30)).isoformat(),
                        "intent": "question",
                    }
                ],
            }
        ],
    }


WORKFLOW = {
    "workflow_key": "cancellation_recovery",
    "title": "Cancellation recovery",
    "routes": [{"segment": "cancelled_not_rescheduled", "service_lines": None}],
    "steps": [
        {"step": 1, "delay_days": 0.0, "channel": "sms", "does": "offers a new time"},
        {"step": 2, "delay_days": 3.0, "channel": "sms", "does": "a reminder"},
    ],
}


def add_pilots(w: World, clinics: dict[str, str]) -> None:
    """``clinics``: clinic -> the patient whose reply is the pilot's example objection."""
    for clinic, patient in clinics.items():
        pilot = pilot_of(clinic)
        w.pilot_store[pilot.pilot_id] = pilot
        w.pilot_arms[pilot.pilot_id] = {"outreach": 10, "holdout": 2}
        w.screenings[pilot.pilot_id] = [
            _screening(patient, "enrolled", "outreach", ["segment cancelled_not_rescheduled"]),
            _screening(
                f"{clinic}:p-out",
                "out",
                None,
                ["cancelled by practice is not one the cohort names (patient)"],
            ),
        ]
        w.pilot_weeks[pilot.pilot_id] = [
            {
                "week": 2,
                "outreach": {
                    "enrolled": 6,
                    "messages_sent": 6,
                    "replies": 2,
                    "booked": 1,
                    "reply_intents": {"question": 1, "later": 1},
                    "barriers": {"cost": 1},
                },
                "holdout": {"enrolled": 1},
            }
        ]
        w.pilot_reports[pilot.pilot_id] = report(patient)
    w.workflows = [WORKFLOW]
    for clinic in clinics:
        w.routes[(clinic, "red_flag")] = {
            "rule_id": "red-flags",
            "rotation_id": "nurse-line",
            "page_at": NOW.isoformat(),
            "escalation_chain": [
                {"rotation_id": "nurse-line", "responder_id": "nurse-kim"},
                {"rotation_id": "nurse-line", "responder_id": "nurse-lee"},
            ],
        }
