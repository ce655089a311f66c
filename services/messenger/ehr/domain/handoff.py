"""When Revisit may not book a chosen time itself, a person does: the case it raises.

Two kinds: the EHR takes no writes from Revisit (or refused this one), so staff book the chosen
time by hand from the messenger's booking task; or the patient's record number led to no
patient, or to several, in the EHR, so a person checks who they are before anything is booked.
The summary is a fixed phrase; the details (time, practitioner, location, service type, the
EHR's patient id when known) stay in the messenger's booking task, read through its API.
"""

from __future__ import annotations

from enum import StrEnum

from services.messenger.domain.conversation import ConversationState, escalation_id
from shared.events.common import Channel
from shared.events.escalations import CaseType, EscalationRaised, Severity


class HandoffReason(StrEnum):
    no_write_access = "no_write_access"  # the connection or the EHR takes no Appointment writes
    ehr_refused = "ehr_refused"  # the EHR answered the booking with a refusal
    patient_not_found = "patient_not_found"
    patient_ambiguous = "patient_ambiguous"
    no_identifier = "no_identifier"  # no record number Revisit could search the EHR with


CASE_OF = {
    HandoffReason.no_write_access: CaseType.booking_by_hand,
    HandoffReason.ehr_refused: CaseType.booking_by_hand,
    HandoffReason.patient_not_found: CaseType.patient_not_matched,
    HandoffReason.patient_ambiguous: CaseType.patient_not_matched,
    HandoffReason.no_identifier: CaseType.patient_not_matched,
}
SUMMARIES = {
    HandoffReason.no_write_access: "Patient chose a time by text; please book it in the EHR",
    HandoffReason.ehr_refused: "The EHR refused a time the patient chose; please book by hand",
    HandoffReason.patient_not_found: "Patient chose a time but was not found in the EHR",
    HandoffReason.patient_ambiguous: "Patient chose a time but matches several EHR records",
    HandoffReason.no_identifier: "Patient chose a time but has no record number for the EHR",
}


def reason_of(value: str | None) -> HandoffReason:
    try:
        return HandoffReason(value or "")
    except ValueError:
        return HandoffReason.ehr_refused


def handoff_case(
    state: ConversationState, reply_message_id: str, channel: Channel, reason: HandoffReason
) -> EscalationRaised:
    case = CASE_OF[reason]
    return EscalationRaised(
        escalation_id=escalation_id(reply_message_id, case),
        case_type=case,
        severity=Severity.normal,
        summary=SUMMARIES[reason],
        source_message_id=reply_message_id,
        sequence_id=state.sequence_id,
        service_line=state.service_line,
        channel=channel,
    )
