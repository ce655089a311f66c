"""question_no_review: the patient asked a question, a clinician wants to see them, and nothing
is booked."""

from __future__ import annotations

from datetime import timedelta

from services.segmenter.domain.findings import (
    Draft,
    Rule,
    RuleResult,
    booking_for,
    documented,
    met_by,
    span,
    visit_for,
    window,
)
from services.segmenter.domain.journey import Journey, RecordKind
from services.segmenter.domain.params import ClinicParams
from shared.events.common import (
    Segment,
    SegmentKind,
    ServiceLine,
    SourceRecord,
    SourceRecordKind,
)
from shared.events.ehr import QuestionChannel
from shared.events.eligibility import ReasonSource

_VIA = {
    QuestionChannel.portal: "portal ",
    QuestionChannel.phone: "phone ",
    QuestionChannel.email: "e-mail ",
    QuestionChannel.in_person: "in-person ",
    QuestionChannel.other: "",
}
_SOURCE = {
    QuestionChannel.portal: ReasonSource.portal_question,
    QuestionChannel.email: ReasonSource.portal_question,
    QuestionChannel.phone: ReasonSource.phone_question,
    QuestionChannel.in_person: ReasonSource.question,
    QuestionChannel.other: ReasonSource.question,
}


class QuestionNoReview(Rule):
    segment = Segment.question_no_review
    kind = SegmentKind.reactivation
    prefix = "qst"
    reads = (RecordKind.question, RecordKind.appointment, RecordKind.visit)
    summary = (
        "The patient asked a question, a clinician recommended a review visit, and nothing is "
        "booked (review window 7 days unless the triage says otherwise)."
    )

    def evaluate(self, journey: Journey, params: ClinicParams) -> RuleResult:
        p = params.question_no_review
        asked = [q for q in journey.questions if q.payload.review_recommended]
        if not asked:
            return RuleResult(notes=("no question on record for which a review was recommended",))
        findings = []
        for q in asked:
            question = q.payload
            at = q.first_at
            within = question.review_within_days or p.review_within_days
            opens = at.date() + timedelta(days=p.wait_days)
            closes = at.date() + timedelta(days=within + p.grace_days)
            line = question.service_line or ServiceLine.general_dermatology
            line_named = question.service_line is not None
            lines = params.closing_lines(self.segment, line, line_documented=line_named)
            findings.append(
                self.finding(
                    journey,
                    params,
                    Draft(
                        source=SourceRecord(
                            kind=SourceRecordKind.question, id=question.question_id
                        ),
                        service_line=line,
                        reason=(
                            f"A clinician recommended a review within {span(within)} after the "
                            f"patient's {_VIA[question.received_via]}question of {at.date()}; "
                            "nothing is booked"
                        ),
                        **window(opens, closes),
                        provider_id=question.provider_id,
                        line_documented=line_named,
                        ended=met_by(
                            booking_for(journey, lines, after=at),
                            visit_for(journey, lines, after=at),
                        ),
                        details=(
                            ("question", question.question_id),
                            ("received", at.isoformat()),
                            ("answered", "yes" if question.answered else "no"),
                            ("review within", span(within)),
                        ),
                        documented=documented(
                            _SOURCE[question.received_via],
                            at.date(),
                            recorded_at=at,
                            due_on=at.date() + timedelta(days=within),
                        ),
                    ),
                )
            )
        return RuleResult(tuple(findings))


question_no_review = QuestionNoReview()
