"""A small synthetic world for the console's route tests: two clinics, each with a red-flag case,
a patient who asked a question, that patient's outreach story, and a pilot in its fourth week."""

from __future__ import annotations

from datetime import timedelta

from tests.console.fakes import NOW, World
from tests.console.pilot_world import add_pilots

A, B = "clinic-a", "clinic-b"
ANA = f"{A}:p-ana"  # clinic A's patient
BO = f"{B}:p-bo"  # clinic B's patient
QUESTION = "How much will the skin check cost?"
RED_FLAG_WORDS = "the mole is bleeding and it hurts"


def case(
    escalation_id: str,
    patient_key: str,
    case_type: str,
    severity: str,
    minutes: int,
    state: str = "paging",
) -> dict[str, object]:
    raised = NOW - timedelta(minutes=minutes)
    return {
        "escalation_id": escalation_id,
        "clinic_id": patient_key.split(":")[0],
        "patient_key": patient_key,
        "case_type": case_type,
        "severity": severity,
        "summary": "Patient reports a new or changing mole after a skin-check recall",
        "raised_at": raised.isoformat(),
        "state": state,
        "rotation_id": "nurse-line",
        "responder_id": "nurse-line.duty",
        "attempt": 1,
        "ack_due_at": (NOW + timedelta(minutes=3)).isoformat(),
        "page_at": None,
        "acknowledged_by": None,
        "acknowledged_at": None,
        "exhausted": False,
        "age_minutes": minutes,
        "audit": [{"at": raised.isoformat(), "actor": "system", "action": "raised", "detail": {}}],
    }


def conversation(patient_key: str, words: str, intent: str) -> list[dict[str, object]]:
    sequence = f"seq-{patient_key}"
    return [
        {
            "message_id": f"out-{patient_key}",
            "direction": "outbound",
            "channel": "sms",
            "body": "Bluebonnet Dermatology: your skin check was cancelled. Reply BOOK for a new "
            "time. Reply STOP to opt out.",
            "sequence_id": sequence,
            "step": 1,
            "status": "sent",
            "at": (NOW - timedelta(hours=2)).isoformat(),
        },
        {
            "message_id": f"in-{patient_key}",
            "direction": "inbound",
            "channel": "sms",
            "body": words,
            "intent": intent,
            "barrier": "cost" if intent == "question" else None,
            "red_flags": ["bleeding"] if intent == "red_flag" else None,
            "reading": {
                "intent": intent,
                "barrier": "cost" if intent == "question" else None,
                "red_flags": [],
                "confidence": 0.6,
            },
            "sequence_id": sequence,
            "step": None,
            "at": (NOW - timedelta(minutes=30)).isoformat(),
        },
    ]


def build_world() -> World:
    w = World()
    for clinic, patient in ((A, ANA), (B, BO)):
        w.cases[f"esc-{clinic}-red"] = case(f"esc-{clinic}-red", patient, "red_flag", "urgent", 4)
        w.cases[f"esc-{clinic}-q"] = case(
            f"esc-{clinic}-q", patient, "clinical_question", "normal", 90
        )
        w.conversations[patient] = conversation(patient, QUESTION, "question")
        w.inbox[patient] = {"assigned_to": None}
        w.contacts[patient] = {
            "given_name": "Ana" if clinic == A else "Bo",
            "language": "en",
            "time_zone": "America/Chicago",
            "opted_out_sms": False,
            "opted_out_email": False,
        }
        w.outreach[patient] = {
            "paused_by_staff": False,
            "opted_out": [],
            "sequences": [
                {
                    "sequence_id": f"seq-{patient}",
                    "eligibility_id": f"elig-{patient}",
                    "segment": "cancelled_not_rescheduled",
                    "state": "active",
                    "stop_reason": None,
                    "reason": "You cancelled your skin check on 1 March and it was not rebooked.",
                    "steps_sent": 1,
                    "steps_planned": 4,
                    "started_at": NOW.isoformat(),
                    "steps": [
                        {
                            "step": 1,
                            "status": "sent",
                            "channel": "sms",
                            "scheduled_for": NOW.isoformat(),
                        },
                        {
                            "step": 2,
                            "status": "planned",
                            "channel": "sms",
                            "scheduled_for": (NOW + timedelta(days=3)).isoformat(),
                        },
                    ],
                }
            ],
        }
        w.explain[patient] = {
            "primary": {"segment": "cancelled_not_rescheduled"},
            "segments": [
                {
                    "segment": "cancelled_not_rescheduled",
                    "status": "open",
                    "why": ["in (primary): cancelled a skin check"],
                    "needs": [
                        {
                            "eligibility_id": f"elig-{patient}",
                            "reason": "cancelled a skin check",
                            "source": {"kind": "appointment", "id": "a-9"},
                            "window": {"opens_on": "2026-03-01", "closes_on": "2026-03-31"},
                        }
                    ],
                }
            ],
        }
        w.consent[patient] = [
            {
                "at": NOW.isoformat(),
                "change": "granted",
                "channel": "sms",
                "purpose": "care",
                "actor": "ehr:consent-1",
                "via": "ehr",
                "source_message_id": None,
            }
        ]
        w.funnel[clinic] = [
            {
                "segment": "cancelled_not_rescheduled",
                "eligible": 40,
                "messaged": 30,
                "reached": 29,
                "response_rate": 0.5,
                "rebooked": 9,
                "completed": 7,
                "revenue_cents": 105000,
                "cancellation_recovery_rate": 0.25,
                "opt_out_rate": 0.03,
                "hours_to_booking_median": 20.0,
            }
        ]
    w.templates = [
        {
            "template_id": 1,
            "clinic_id": None,
            "workflow_key": "cancellation_recovery",
            "step": 1,
            "channel": "sms",
            "language": "en",
            "tone": "supportive",
            "version": 1,
            "status": "approved",
            "body": "Your {service_name} was cancelled. Reply STOP to opt out.",
            "subject": None,
        },
        {
            "template_id": 2,
            "clinic_id": A,
            "workflow_key": "cancellation_recovery",
            "step": 2,
            "channel": "sms",
            "language": "en",
            "tone": "supportive",
            "version": 2,
            "status": "draft",
            "body": "We kept a time for you, reply BOOK.",
            "subject": None,
        },
        {
            "template_id": 3,
            "clinic_id": A,
            "workflow_key": "cancellation_recovery",
            "step": 3,
            "channel": "sms",
            "language": "en",
            "tone": "supportive",
            "version": 1,
            "status": "draft",
            "body": "About your biopsy: reply BOOK.",
            "subject": None,
        },
    ]
    add_pilots(w, {A: ANA, B: BO})
    return w
