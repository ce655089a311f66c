"""consult_no_treatment: a consultation recommended a treatment that has not started."""

from __future__ import annotations

from datetime import timedelta

from services.segmenter.domain.findings import (
    Draft,
    Ending,
    Rule,
    RuleResult,
    booking_for,
    documented,
    met_by,
    visit_for,
    window,
    words,
)
from services.segmenter.domain.journey import Journey, RecordKind
from services.segmenter.domain.params import ClinicParams
from shared.events.common import Segment, SegmentKind, SourceRecord, SourceRecordKind
from shared.events.ehr import TreatmentRecommended
from shared.events.eligibility import LeftReason, ReasonSource
from shared.rebooking import closes


class ConsultNoTreatment(Rule):
    segment = Segment.consult_no_treatment
    kind = SegmentKind.reactivation
    prefix = "con"
    reads = (
        RecordKind.treatment_recommendation,
        RecordKind.treatment_plan,
        RecordKind.appointment,
        RecordKind.visit,
    )
    summary = (
        "A consultation recommended a treatment that has not started (no session, no visit, "
        "nothing booked) 21 days later, or sooner if the consult asked for a quicker start."
    )

    def evaluate(self, journey: Journey, params: ClinicParams) -> RuleResult:
        p = params.consult_no_treatment
        if not journey.recommendations:
            return RuleResult(notes=("no treatment recommended at a consultation on record",))
        findings = []
        for rec in journey.recommendations:
            wait = p.wait_days
            if rec.start_within_days is not None:
                wait = min(wait, rec.start_within_days)
            opens = rec.recommended_on + timedelta(days=wait)
            consult = journey.visit(rec.visit_id)
            findings.append(
                self.finding(
                    journey,
                    params,
                    Draft(
                        source=SourceRecord(
                            kind=SourceRecordKind.treatment_recommendation,
                            id=rec.recommendation_id,
                        ),
                        service_line=rec.service_line,
                        reason=(
                            f"Consultation on {rec.recommended_on} recommended "
                            f"{words(rec.service_line)}; it has not started and nothing is booked"
                        ),
                        **window(opens, opens + timedelta(days=p.window_days)),
                        documented_urgency=rec.urgency,
                        provider_id=rec.provider_id,
                        location_id=consult.location_id if consult else None,
                        ended=self._started(journey, rec, params),
                        details=(
                            ("consultation visit", rec.visit_id),
                            ("recommended on", str(rec.recommended_on)),
                            ("documented urgency", rec.urgency.value),
                        ),
                        documented=documented(
                            ReasonSource.consultation,
                            rec.recommended_on,
                            recorded_at=consult.completed_at if consult else None,
                            due_on=rec.recommended_on + timedelta(days=rec.start_within_days)
                            if rec.start_within_days
                            else None,
                        ),
                    ),
                )
            )
        return RuleResult(tuple(findings))

    @staticmethod
    def _started(
        journey: Journey, rec: TreatmentRecommended, params: ClinicParams
    ) -> Ending | None:
        lines = params.closing_lines(Segment.consult_no_treatment, rec.service_line)
        for plan in journey.plans:
            began = plan.last_session_on or plan.started_on
            if (
                closes(lines, plan.service_line)
                and plan.sessions_completed >= 1
                and began is not None
                and began >= rec.recommended_on
            ):
                return Ending(
                    LeftReason.visit_completed,
                    SourceRecord(kind=SourceRecordKind.treatment_plan, id=plan.plan_id),
                    f"treatment plan {plan.plan_id} has started",
                )
        consult = journey.visit(rec.visit_id)
        return met_by(
            booking_for(
                journey,
                lines,
                after_day=rec.recommended_on,
                exclude=[consult.appointment_id] if consult and consult.appointment_id else [],
            ),
            visit_for(journey, lines, after_day=rec.recommended_on, exclude=[rec.visit_id]),
        )


consult_no_treatment = ConsultNoTreatment()
