"""cancelled_not_rescheduled: a cancelled or missed appointment that nothing has replaced."""

from __future__ import annotations

from datetime import timedelta

from services.segmenter.domain.findings import (
    Draft,
    Ending,
    Rule,
    RuleResult,
    booking_for,
    capital,
    documented,
    met_by,
    visit_for,
    words,
)
from services.segmenter.domain.journey import Appointment, AppointmentStatus, Journey, RecordKind
from services.segmenter.domain.params import ClinicParams
from shared.events.common import Initiator, Segment, SegmentKind, SourceRecord, SourceRecordKind
from shared.events.ehr import CancellationReason
from shared.events.eligibility import LeftReason, MissedAppointment, ReasonSource
from shared.rebooking import closes


def _source(appt: Appointment) -> SourceRecord:
    return SourceRecord(kind=SourceRecordKind.appointment, id=appt.appointment_id)


class CancelledNotRescheduled(Rule):
    segment = Segment.cancelled_not_rescheduled
    kind = SegmentKind.reactivation
    prefix = "cnr"
    reads = (RecordKind.appointment, RecordKind.visit)
    summary = (
        "The patient cancelled (or missed) an appointment and nothing replaced it: no booking "
        "for that care starting after the cancellation, no visit since."
    )

    def evaluate(self, journey: Journey, params: ClinicParams) -> RuleResult:
        p = params.cancelled_not_rescheduled
        missed = [a for a in journey.appointments if a.missed]
        if not missed:
            return RuleResult(notes=("no cancelled or missed appointment on record",))
        findings = []
        for appt in missed:
            at = appt.missed_at
            lines = params.closing_lines(self.segment, appt.service_line)
            ended = self._excluded(appt, params) or met_by(
                booking_for(journey, lines, after=at, exclude=[appt.appointment_id]),
                visit_for(journey, lines, after=at),
            )
            later = [
                b
                for b in journey.appointments
                if b.missed
                and b is not appt
                and closes(lines, b.service_line)
                and (b.missed_at, b.appointment_id) > (at, appt.appointment_id)
            ]
            if ended is None and later:
                ended = Ending(
                    LeftReason.superseded,
                    _source(later[-1]),
                    f"a later appointment {later[-1].appointment_id} was also missed",
                )
            what = "missed (no-show)" if appt.status is AppointmentStatus.no_show else "cancelled"
            source = (
                ReasonSource.no_show
                if appt.status is AppointmentStatus.no_show
                else ReasonSource.cancellation
            )
            if appt.cancelled_by == "practice":
                what = "cancelled by the practice"
                source = ReasonSource.practice_cancellation
            plan = journey.plan(appt.plan_id)
            due_at = at + timedelta(hours=p.delay_hours)
            details = [
                ("appointment", appt.appointment_id),
                ("status", appt.status.value),
                ("recorded at", at.isoformat()),
            ]
            if appt.reason_code is not None:
                details.append(("cancellation reason", appt.reason_code.value))
            if appt.staff_note:
                details.append(("scheduler note (staff only)", appt.staff_note))
            findings.append(
                self.finding(
                    journey,
                    params,
                    Draft(
                        source=_source(appt),
                        service_line=appt.service_line,
                        reason=(
                            f"{capital(words(appt.service_line))} appointment on "
                            f"{appt.start.date()} was {what}; nothing is booked to replace it"
                        ),
                        surface_at=due_at,
                        expires_at=at + timedelta(days=p.window_days),
                        due_at=due_at,
                        provider_id=appt.provider_id,
                        location_id=appt.location_id,
                        ended=ended,
                        missed=MissedAppointment(
                            no_show=appt.status is AppointmentStatus.no_show,
                            cancelled_by=Initiator(appt.cancelled_by or "unknown"),
                            reason=appt.reason_code or CancellationReason.unknown,
                        ),
                        details=tuple(details),
                        documented=documented(source, appt.start.date(), recorded_at=appt.start),
                        purpose=plan.purpose if plan is not None else None,
                    ),
                )
            )
        return RuleResult(tuple(findings))

    def _excluded(self, appt: Appointment, params: ClinicParams) -> Ending | None:
        p = params.cancelled_not_rescheduled
        why = None
        if appt.status is AppointmentStatus.no_show and not p.include_no_shows:
            why = "this clinic does not reach out after no-shows"
        elif appt.reason_code is not None and appt.reason_code in p.skip_reasons:
            why = f"cancellation reason {appt.reason_code.value} never makes a patient eligible"
        elif appt.cancelled_by == "practice" and not p.include_practice_cancellations:
            why = "this clinic does not reach out after its own cancellations"
        if why is None:
            return None
        return Ending(LeftReason.record_corrected, _source(appt), why)

    def gone(self, source: SourceRecord, journey: Journey) -> Ending:
        appt = journey.appointment(source.id)
        if appt is not None and appt.active:
            reason = (
                LeftReason.visit_completed
                if appt.status is AppointmentStatus.kept
                else LeftReason.booked
            )
            return Ending(reason, source, "the appointment itself is on the books again")
        return super().gone(source, journey)


cancelled_not_rescheduled = CancelledNotRescheduled()
