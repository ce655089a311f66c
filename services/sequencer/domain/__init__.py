"""The sequencer's pure core: workflows, rules, the sequence state machine, pilots, preview.

No I/O imports here (no sqlalchemy, fastapi, httpx or faststream): every decision takes the
current state, an event and "now" (in :class:`Context`) and returns an :class:`Outcome`.
"""

from services.sequencer.domain.lifecycle import (
    PilotArm,
    on_close_due,
    on_eligible,
    on_left,
    on_step_due,
)
from services.sequencer.domain.model import (
    CLOSE_TIMER,
    STEP_TIMER,
    Activity,
    Outcome,
    Patient,
    Send,
    Sequence,
    State,
    StepRecord,
    StepStatus,
    TimerOp,
    clinic_of,
    sequence_id_for,
)
from services.sequencer.domain.operators import close_holdout, pause, resume, stop_by_staff
from services.sequencer.domain.reactions import on_escalation, on_message, on_reply
from services.sequencer.domain.rules import AllowedHours, Rules
from services.sequencer.domain.steps import Context
from services.sequencer.domain.workflows import DEFAULT_WORKFLOWS, Catalogue, Workflow

__all__ = [
    "CLOSE_TIMER",
    "DEFAULT_WORKFLOWS",
    "STEP_TIMER",
    "Activity",
    "AllowedHours",
    "Catalogue",
    "Context",
    "Outcome",
    "Patient",
    "PilotArm",
    "Rules",
    "Send",
    "Sequence",
    "State",
    "StepRecord",
    "StepStatus",
    "TimerOp",
    "Workflow",
    "clinic_of",
    "close_holdout",
    "on_close_due",
    "on_eligible",
    "on_escalation",
    "on_left",
    "on_message",
    "on_reply",
    "on_step_due",
    "pause",
    "resume",
    "sequence_id_for",
    "stop_by_staff",
]
