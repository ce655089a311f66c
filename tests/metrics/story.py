"""Hand-made event histories: one synthetic patient's story, event by event.

``Story`` builds real, validated envelopes (the same models the services publish) with times
given as hours after the story's start, so a definition test reads like a timeline.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.events import Envelope, new_event
from shared.events.common import (
    Channel,
    EhrSource,
    Initiator,
    Purpose,
    Segment,
    SegmentKind,
    ServiceLine,
    ServicePerformed,
    SourceRecord,
    SourceRecordKind,
    SourceSystem,
)
from shared.events.ehr import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentKept,
    AppointmentNoShow,
    VisitCompleted,
)
from shared.events.eligibility import (
    LeftReason,
    MissedAppointment,
    PatientBecameEligible,
    PatientLeftSegment,
    RebookedBy,
)
from shared.events.escalations import (
    CaseType,
    EscalationAcknowledged,
    EscalationRaised,
    EscalationResolved,
    Outcome,
    Severity,
)
from shared.events.messages import (
    Barrier,
    BlockReason,
    BookingLinkClicked,
    ConsentScope,
    MessageBlocked,
    MessageDelivered,
    MessageSent,
    OptedOut,
    RecordedVia,
    ReplyIntent,
    ReplyReceived,
)
from shared.events.outreach import Arm, SequenceStarted
from shared.events.pilot import PilotPlan

START = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday
REACTIVATION = {
    Segment.cancelled_not_rescheduled,
    Segment.lapsed_patient,
    Segment.question_no_review,
    Segment.consult_no_treatment,
}


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Story:
    clinic_id: str
    patient: str = field(default_factory=lambda: _id("pt"))
    start: datetime = START
    events: list[Envelope[Any]] = field(default_factory=list)
    _step: int = 0

    @property
    def patient_key(self) -> str:
        return f"{self.clinic_id}:{self.patient}"

    def at(self, hours: float) -> datetime:
        return self.start + timedelta(hours=hours)

    def _add(self, payload: Any, hours: float) -> Envelope[Any]:
        event = new_event(
            payload,
            clinic_id=self.clinic_id,
            patient_key=self.patient_key,
            occurred_at=self.at(hours),
        )
        self.events.append(event)
        return event

    def _source(self, record_id: str, hours: float) -> EhrSource:
        return EhrSource(
            system=SourceSystem.json, record_id=record_id, source_updated_at=self.at(hours)
        )

    # --- eligibility and sequences ---------------------------------------------------------------

    def eligible(
        self,
        hours: float = 0,
        segment: Segment = Segment.cancelled_not_rescheduled,
        line: ServiceLine = ServiceLine.skin_check,
        *,
        missed: MissedAppointment | None = None,
        rebooked_by: RebookedBy | None = None,
    ) -> str:
        eligibility_id = _id("elig")
        kind = SegmentKind.reactivation if segment in REACTIVATION else SegmentKind.recall
        self._add(
            PatientBecameEligible(
                eligibility_id=eligibility_id,
                segment=segment,
                kind=kind,
                service_line=line,
                reason="appointment cancelled and not rescheduled",
                source_record=SourceRecord(kind=SourceRecordKind.appointment, id=_id("appt")),
                due_at=self.at(hours + 2),
                needs_marketing_consent=False,
                provider_id="dr-1",
                location_id="loc-1",
                missed=missed,
                rebooked_by=rebooked_by,
            ),
            hours,
        )
        return eligibility_id

    def left(self, eligibility_id: str, hours: float, **kw: Any) -> None:
        self._add(
            PatientLeftSegment(
                eligibility_id=eligibility_id,
                segment=kw.get("segment", Segment.cancelled_not_rescheduled),
                kind=kw.get("kind", SegmentKind.reactivation),
                service_line=kw.get("line", ServiceLine.skin_check),
                reason=LeftReason.booked,
            ),
            hours,
        )

    def started(
        self,
        eligibility_id: str,
        hours: float,
        *,
        segment: Segment = Segment.cancelled_not_rescheduled,
        line: ServiceLine = ServiceLine.skin_check,
        workflow: str = "cancellation-recovery",
        pilot_id: str | None = None,
        arm: Arm = Arm.outreach,
        plan: PilotPlan | None = None,
    ) -> str:
        sequence_id = _id("seq")
        kind = SegmentKind.reactivation if segment in REACTIVATION else SegmentKind.recall
        self._add(
            SequenceStarted(
                sequence_id=sequence_id,
                eligibility_id=eligibility_id,
                segment=segment,
                kind=kind,
                service_line=line,
                workflow_key=workflow,
                purpose=Purpose.care,
                steps_planned=0 if arm is Arm.holdout else 2,
                pilot_id=pilot_id,
                arm=arm,
                pilot_plan=plan,
            ),
            hours,
        )
        return sequence_id

    # --- messages and replies -----------------------------------------------------------------

    def sent(self, sequence_id: str, hours: float, *, delivered_after: float | None = 0.01) -> str:
        self._step += 1
        message_id = _id("msg")
        common = {
            "message_id": message_id,
            "sequence_id": sequence_id,
            "step": self._step,
            "channel": Channel.sms,
        }
        self._add(MessageSent(**common, template_key="recall.sms.v1", purpose=Purpose.care), hours)
        if delivered_after is not None:
            self._add(MessageDelivered(**common), hours + delivered_after)
        return message_id

    def clicked(self, sequence_id: str, step: int, hours: float) -> None:
        self._add(BookingLinkClicked(sequence_id=sequence_id, step=step), hours)

    def blocked(self, sequence_id: str, hours: float, reason: BlockReason) -> None:
        self._add(
            MessageBlocked(sequence_id=sequence_id, step=1, channel=Channel.sms, reason=reason),
            hours,
        )

    def reply(
        self,
        sequence_id: str | None,
        hours: float,
        intent: ReplyIntent = ReplyIntent.book,
        barrier: Barrier | None = None,
        in_reply_to: str | None = None,
    ) -> None:
        self._add(
            ReplyReceived(
                reply_message_id=_id("in"),
                channel=Channel.sms,
                sequence_id=sequence_id,
                in_reply_to_message_id=in_reply_to,
                intent=intent,
                barrier=barrier,
            ),
            hours,
        )

    def opt_out(self, hours: float) -> None:
        self._add(
            OptedOut(
                channel=Channel.sms,
                scope=ConsentScope.all,
                recorded_via=RecordedVia.reply_keyword,
                source_message_id=_id("in"),
            ),
            hours,
        )

    # --- the EHR --------------------------------------------------------------------------------

    def _appt(self, appointment_id: str, hours: float, line: ServiceLine) -> dict[str, Any]:
        return {
            "source": self._source(appointment_id, hours),
            "appointment_id": appointment_id,
            "start": self.at(hours + 72),
            "service_line": line,
            "provider_id": "dr-1",
            "location_id": "loc-1",
        }

    def booked(self, hours: float, line: ServiceLine = ServiceLine.skin_check) -> str:
        appointment_id = _id("appt")
        self._add(AppointmentBooked(**self._appt(appointment_id, hours, line)), hours)
        return appointment_id

    def kept(
        self, appointment_id: str, hours: float, line: ServiceLine = ServiceLine.skin_check
    ) -> None:
        self._add(AppointmentKept(**self._appt(appointment_id, hours, line)), hours)

    def no_show(self, appointment_id: str, hours: float) -> None:
        self._add(
            AppointmentNoShow(**self._appt(appointment_id, hours, ServiceLine.skin_check)), hours
        )

    def cancelled(self, appointment_id: str, hours: float) -> None:
        self._add(
            AppointmentCancelled(
                **self._appt(appointment_id, hours, ServiceLine.skin_check),
                cancelled_by=Initiator.patient,
            ),
            hours,
        )

    def visit(
        self,
        appointment_id: str | None,
        hours: float,
        cents: int = 15000,
        visit_id: str | None = None,
        source_hours: float | None = None,
    ) -> str:
        visit_id = visit_id or _id("visit")
        services = (
            (
                ServicePerformed(
                    code="99213",
                    system="cpt",
                    service_line=ServiceLine.skin_check,
                    charge_cents=cents,
                ),
            )
            if cents
            else ()
        )
        self._add(
            VisitCompleted(
                source=self._source(visit_id, hours if source_hours is None else source_hours),
                visit_id=visit_id,
                appointment_id=appointment_id,
                completed_at=self.at(hours),
                provider_id="dr-1",
                location_id="loc-1",
                services=services,
            ),
            hours,
        )
        return visit_id

    # --- escalations ----------------------------------------------------------------------------

    def escalation(
        self,
        sequence_id: str | None,
        hours: float,
        ack_after: float | None = None,
        resolve_after: float | None = None,
    ) -> str:
        escalation_id = _id("esc")
        self._add(
            EscalationRaised(
                escalation_id=escalation_id,
                case_type=CaseType.clinical_question,
                severity=Severity.high,
                summary="Patient asks a clinical question after a recall message",
                sequence_id=sequence_id,
            ),
            hours,
        )
        if ack_after is not None:
            self._add(
                EscalationAcknowledged(escalation_id=escalation_id, responder_id="staff-1"),
                hours + ack_after,
            )
        if resolve_after is not None:
            self._add(
                EscalationResolved(
                    escalation_id=escalation_id, outcome=Outcome.answered, resolved_by="staff-1"
                ),
                hours + resolve_after,
            )
        return escalation_id


def day(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
