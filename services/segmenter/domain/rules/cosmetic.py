"""cosmetic_maintenance_due: a cosmetic treatment whose usual maintenance window is opening."""

from __future__ import annotations

from datetime import timedelta

from services.segmenter.domain.findings import (
    Draft,
    Ending,
    Finding,
    Rule,
    RuleResult,
    booking_for,
    capital,
    documented,
    met_by,
    span,
    span_adjective,
    visit_for,
    window,
    words,
)
from services.segmenter.domain.journey import Journey, RecordKind, Visit
from services.segmenter.domain.params import ClinicParams
from shared.events.common import (
    Purpose,
    Segment,
    SegmentKind,
    ServiceLine,
    SourceRecord,
    SourceRecordKind,
)
from shared.events.ehr import PlanStatus
from shared.events.eligibility import LeftReason, ReasonSource


def _source(visit: Visit) -> SourceRecord:
    return SourceRecord(kind=SourceRecordKind.visit, id=visit.visit_id)


class CosmeticMaintenanceDue(Rule):
    segment = Segment.cosmetic_maintenance_due
    kind = SegmentKind.recall
    prefix = "cos"
    reads = (RecordKind.visit, RecordKind.treatment_plan, RecordKind.appointment)
    summary = (
        "A cosmetic service with a maintenance interval (neurotoxin ~90 days, filler ~9 months) "
        "whose window is opening, and nothing booked for it. Needs marketing consent."
    )

    def evaluate(self, journey: Journey, params: ClinicParams) -> RuleResult:
        p = params.cosmetic_maintenance_due
        findings: list[Finding] = []
        notes: list[str] = []
        latest: dict[ServiceLine, Visit] = {}
        for visit in journey.visits:  # in time order: the last one per service wins
            for line in visit.service_lines:
                latest[line] = visit
        for line, days in sorted(p.maintenance_days.items()):
            last = latest.get(line)
            if last is None:
                continue
            if self._series_running(journey, line):
                notes.append(f"a {words(line)} series is in progress (series_incomplete covers it)")
                continue
            if self._medical_plan(journey, line):
                notes.append(
                    f"the latest {words(line)} plan documents a medical purpose: its upkeep "
                    "is care the clinician plans, not cosmetic maintenance"
                )
                continue
            findings.append(self._maintenance(journey, params, line, days, last))
        if not findings and not notes:
            notes.append("no cosmetic treatment with a maintenance interval on record")
        return RuleResult(tuple(findings), tuple(notes))

    def _maintenance(
        self, journey: Journey, params: ClinicParams, line: ServiceLine, days: int, last: Visit
    ) -> Finding:
        p = params.cosmetic_maintenance_due
        given = last.completed_at.date()
        opens_window = given + timedelta(days=days)
        opens = opens_window - timedelta(days=p.lead_days)
        return self.finding(
            journey,
            params,
            Draft(
                source=_source(last),
                part=line.value,
                service_line=line,
                reason=(
                    f"{capital(words(line))} last given on {given}; its usual "
                    f"{span_adjective(days)} maintenance window opens {opens_window}"
                ),
                **window(opens, opens_window + timedelta(days=p.window_days)),
                provider_id=last.provider_id,
                location_id=last.location_id,
                ended=met_by(
                    booking_for(
                        journey,
                        params.closing_lines(self.segment, line),
                        after=last.completed_at,
                    ),
                    None,
                ),
                details=(
                    ("last treatment visit", last.visit_id),
                    ("maintenance interval", span(days)),
                    ("window opens", str(opens_window)),
                ),
                documented=documented(
                    ReasonSource.visit, given, recorded_at=last.completed_at, due_on=opens_window
                ),
            ),
        )

    @staticmethod
    def _series_running(journey: Journey, line: ServiceLine) -> bool:
        return any(
            plan.service_line is line
            and plan.status is PlanStatus.active
            and plan.sessions_completed < plan.sessions_planned
            for plan in journey.plans
        )

    @staticmethod
    def _medical_plan(journey: Journey, line: ServiceLine) -> bool:
        plans = [p for p in journey.plans if p.service_line is line]
        return bool(plans) and plans[-1].purpose is Purpose.care

    def gone(self, source: SourceRecord, journey: Journey) -> Ending:
        treated = journey.visit(source.id)
        if treated is not None:
            later = visit_for(journey, treated.service_lines, after=treated.completed_at)
            if later is not None and later.visit_id != treated.visit_id:
                return Ending(
                    LeftReason.visit_completed,
                    _source(later),
                    f"treated again at visit {later.visit_id}",
                )
        return Ending(LeftReason.superseded, None, "no maintenance is due from this visit any more")


cosmetic_maintenance_due = CosmeticMaintenanceDue()
