"""series_incomplete: a treatment series of N sessions, k < N done, the next one not booked."""

from __future__ import annotations

from datetime import date, timedelta

from services.segmenter.domain.findings import (
    Draft,
    Ending,
    Finding,
    Rule,
    RuleResult,
    capital,
    documented,
    met_by,
    span,
    visit_for,
    window,
    words,
)
from services.segmenter.domain.journey import Appointment, Journey, RecordKind
from services.segmenter.domain.params import ClinicParams
from shared.events.common import (
    Segment,
    SegmentKind,
    ServiceLine,
    SourceRecord,
    SourceRecordKind,
)
from shared.events.ehr import PlanStatus, TreatmentPlanUpdated
from shared.events.eligibility import LeftReason, ReasonSource
from shared.rebooking import closes


def _source(plan: TreatmentPlanUpdated) -> SourceRecord:
    return SourceRecord(kind=SourceRecordKind.treatment_plan, id=plan.plan_id)


class SeriesIncomplete(Rule):
    segment = Segment.series_incomplete
    kind = SegmentKind.recall
    prefix = "ser"
    reads = (RecordKind.treatment_plan, RecordKind.appointment, RecordKind.visit)
    summary = (
        "A treatment plan of N sessions has k < N done and the next session is not booked "
        "within its interval."
    )

    def evaluate(self, journey: Journey, params: ClinicParams) -> RuleResult:
        if not journey.plans:
            return RuleResult(notes=("no treatment series on record",))
        findings: list[Finding] = []
        notes: list[str] = []
        for plan in journey.plans:
            if plan.sessions_completed == 0 and plan.status is PlanStatus.active:
                notes.append(
                    f"plan {plan.plan_id} has no session done yet "
                    "(consult_no_treatment covers treatments that have not started)"
                )
                continue
            findings.append(self._series(journey, params, plan))
        return RuleResult(tuple(findings), tuple(notes))

    def _series(
        self, journey: Journey, params: ClinicParams, plan: TreatmentPlanUpdated
    ) -> Finding:
        p = params.series_incomplete
        k, n = plan.sessions_completed, plan.sessions_planned
        last = plan.last_session_on or plan.started_on
        assert last is not None  # the schema requires last_session_on once k > 0
        next_due = last + timedelta(days=plan.interval_days)
        ended = self._ended(journey, params, plan)
        opens = next_due + timedelta(days=p.grace_days)
        renewed = None
        if k >= 2:
            renewed = Ending(
                LeftReason.visit_completed,
                _source(plan),
                f"session {k} of {n} was recorded on {last}",
            )
        what = capital(words(plan.service_line))
        return self.finding(
            journey,
            params,
            Draft(
                source=_source(plan),
                service_line=plan.service_line,
                reason=(
                    f"{what} series: {k} of {n} sessions done, the last on {last}; the next "
                    f"was due {next_due} (every {span(plan.interval_days)}) and is not booked"
                ),
                **window(opens, opens + timedelta(days=p.window_days)),
                provider_id=plan.provider_id,
                ended=ended,
                renewed=renewed,
                documented=documented(ReasonSource.series, last, due_on=next_due),
                purpose=plan.purpose,
                details=(
                    ("plan", plan.plan_id),
                    ("status", plan.status.value),
                    ("sessions", f"{k} of {n}"),
                    ("last session", str(last)),
                    ("next session due", str(next_due)),
                ),
            ),
        )

    def _ended(
        self, journey: Journey, params: ClinicParams, plan: TreatmentPlanUpdated
    ) -> Ending | None:
        if plan.status is PlanStatus.completed or plan.sessions_completed >= plan.sessions_planned:
            return Ending(LeftReason.plan_completed, _source(plan), "every session is done")
        if plan.status in (PlanStatus.cancelled, PlanStatus.on_hold):
            return Ending(
                LeftReason.plan_cancelled, _source(plan), f"the plan is {plan.status.value}"
            )
        last = plan.last_session_on or plan.started_on
        assert last is not None
        lines = params.closing_lines(self.segment, plan.service_line)
        return met_by(
            self._booking(journey, plan, lines, last),
            visit_for(journey, lines, after_day=last),
        )

    @staticmethod
    def _booking(
        journey: Journey,
        plan: TreatmentPlanUpdated,
        lines: frozenset[ServiceLine] | None,
        last: date,
    ) -> Appointment | None:
        """A booking linked to the plan, or for its service, after the last session."""
        for appt in journey.appointments:
            linked = appt.plan_id == plan.plan_id or closes(lines, appt.service_line)
            if appt.active and linked and appt.start.date() > last:
                return appt
        return None


series_incomplete = SeriesIncomplete()
