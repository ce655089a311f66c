"""A chosen time that Revisit may not book itself becomes a person's task, in the booking
timer's transaction: the case (EscalationRaised, which also holds outreach while it is open),
the booking task with what is needed to book by hand, and the answer the patient gets (a
person will confirm). The patient asked for that time, so BookingRequested goes out too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.messenger import repository
from services.messenger.domain.conversation import Answer, ConversationState
from services.messenger.domain.system_messages import Reply
from services.messenger.ehr import store
from services.messenger.ehr.domain.handoff import handoff_case, reason_of
from services.messenger.scheduling.base import BookingResult
from shared.events import Payload
from shared.events.common import Channel


async def hand_to_staff(
    session: AsyncSession,
    clinic_id: str,
    state: ConversationState,
    reply_message_id: str,
    channel: Channel,
    booking_request_id: str,
    result: BookingResult,
    now: datetime,
) -> tuple[list[Payload], Answer]:
    """The case to stage and the answer to send; the booking task is stored here."""
    reason = reason_of(result.reason)
    case = handoff_case(state, reply_message_id, channel, reason)
    await repository.open_escalation(session, case.escalation_id, state.patient_key)
    await store.save_booking_task(
        session,
        escalation_id=case.escalation_id,
        clinic_id=clinic_id,
        patient_key=state.patient_key,
        reason=reason.value,
        booking_request_id=booking_request_id,
        reply_message_id=reply_message_id,
        service_line=state.service_line.value,
        details=dict(result.details or {}),
        created_at=now,
    )
    return [case], Answer(Reply.booking_by_staff)
