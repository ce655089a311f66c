"""The cases a reply raises for people: fixed phrases, deterministic ids.

An escalation's summary is a fixed phrase chosen by case type and red-flag kind (the event
schema allows nothing else, and it travels through Kafka and pagers). What the patient said,
and the one-line summary of it, stay in the messenger; the case carries the reply's id
(``source_message_id``) so the person can read it there.
"""

from __future__ import annotations

import uuid

from services.messenger.domain.red_flags import RedFlag
from shared.events.common import Channel, ServiceLine
from shared.events.escalations import CaseType, EscalationRaised, Severity

ESCALATION_NAMESPACE = uuid.UUID("5c7e0c1e-9b7a-4f7e-a1d2-2f4b8c1d9e60")

# In order of how urgently a person must act: the first kind named in a reply gives the phrase.
RED_FLAG_SUMMARIES: dict[RedFlag, str] = {
    RedFlag.mood: "Patient reports low mood or thoughts of self-harm",
    RedFlag.allergic_reaction: "Patient reports a possible allergic reaction or trouble breathing",
    RedFlag.chest_pain_or_fainting: "Patient reports chest pain, fainting or dizziness",
    RedFlag.vision_change: "Patient reports a change in vision",
    RedFlag.skin_colour_change: "Patient reports skin changing colour after a treatment",
    RedFlag.emergency: "Patient says it is an emergency",
    RedFlag.bleeding: "Patient reports bleeding",
    RedFlag.wound_opened: "Patient reports a wound or stitches that opened",
    RedFlag.infection: "Patient reports possible signs of infection",
    RedFlag.swelling: "Patient reports swelling",
    RedFlag.drooping: "Patient reports a drooping eyelid, brow or face",
    RedFlag.severe_headache: "Patient reports a severe headache",
    RedFlag.stomach_pain: "Patient reports severe stomach pain",
    RedFlag.severe_pain: "Patient reports severe or worsening pain",
    RedFlag.burn_or_blister: "Patient reports a burn or blisters",
    RedFlag.changing_mole: "Patient reports a new or changing mole",
    RedFlag.other: "Patient reply may describe an urgent symptom",
}
CASE_SUMMARIES: dict[CaseType, str] = {
    CaseType.clinical_question: "Patient asked a clinical question",
    CaseType.unresolved_concern: "Patient reports a concern is unresolved",
    CaseType.poor_experience: "Patient describes a poor experience",
    CaseType.unclassified_reply: "Patient reply needs a person to read it",
}
QUESTION_SUMMARY = "Patient asked a non-clinical question"


def escalation_id(reply_message_id: str, case: CaseType) -> str:
    """Deterministic, so a replayed reply raises the same case, not a second one."""
    return str(uuid.uuid5(ESCALATION_NAMESPACE, f"{reply_message_id}:{case.value}"))


def red_flag_summary(flags: frozenset[RedFlag]) -> str:
    for flag, phrase in RED_FLAG_SUMMARIES.items():
        if flag in flags:
            return phrase
    return RED_FLAG_SUMMARIES[RedFlag.other]


def case(
    kind: CaseType,
    severity: Severity,
    summary: str,
    *,
    reply_message_id: str,
    sequence_id: str | None,
    service_line: ServiceLine,
    channel: Channel,
) -> EscalationRaised:
    return EscalationRaised(
        escalation_id=escalation_id(reply_message_id, kind),
        case_type=kind,
        severity=severity,
        summary=summary,
        source_message_id=reply_message_id,
        sequence_id=sequence_id,
        service_line=service_line,
        channel=channel,
    )
