"""lapsed_patient: an established patient (two visits or more) gone for the lapse period."""

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
    span,
    window,
    words,
)
from services.segmenter.domain.journey import Journey, RecordKind
from services.segmenter.domain.params import ClinicParams
from shared.events.common import Segment, SegmentKind, SourceRecord, SourceRecordKind
from shared.events.eligibility import LeftReason, ReasonSource


class LapsedPatient(Rule):
    segment = Segment.lapsed_patient
    kind = SegmentKind.reactivation
    prefix = "lap"
    reads = (RecordKind.visit, RecordKind.appointment)
    summary = "At least 2 visits before, none for the lapse period (18 months), and nothing booked."

    def evaluate(self, journey: Journey, params: ClinicParams) -> RuleResult:
        p = params.lapsed_patient
        visits = journey.visits
        if len(visits) < p.min_visits:
            return RuleResult(
                notes=(f"{len(visits)} visit(s) on record; lapsed needs at least {p.min_visits}",)
            )
        last = visits[-1]
        lapsed_on = last.completed_at.date() + timedelta(days=p.lapse_days)
        finding = self.finding(
            journey,
            params,
            Draft(
                source=SourceRecord(kind=SourceRecordKind.visit, id=last.visit_id),
                service_line=last.primary_line,
                reason=(
                    f"{len(visits)} visits on record, the last on {last.completed_at.date()} "
                    f"({words(last.primary_line)}); no visit for {span(p.lapse_days)} and "
                    "nothing is booked"
                ),
                **window(lapsed_on, lapsed_on + timedelta(days=p.window_days)),
                provider_id=last.provider_id,
                location_id=last.location_id,
                ended=met_by(
                    booking_for(
                        journey,
                        params.closing_lines(self.segment, last.primary_line),
                        after=last.completed_at,
                    ),
                    None,
                ),
                details=(
                    ("visits on record", str(len(visits))),
                    ("last visit", last.visit_id),
                    ("lapsed on", str(lapsed_on)),
                ),
                documented=documented(
                    ReasonSource.visit, last.completed_at.date(), recorded_at=last.completed_at
                ),
            ),
        )
        return RuleResult((finding,))

    def gone(self, source: SourceRecord, journey: Journey) -> Ending:
        if journey.visits and journey.visits[-1].visit_id != source.id:
            latest = journey.visits[-1]
            return Ending(
                LeftReason.visit_completed,
                SourceRecord(kind=SourceRecordKind.visit, id=latest.visit_id),
                f"the patient came back for visit {latest.visit_id}",
            )
        return super().gone(source, journey)


lapsed_patient = LapsedPatient()
