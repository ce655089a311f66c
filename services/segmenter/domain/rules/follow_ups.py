"""Follow-ups a visit recommended: one-off (follow_up_not_booked) and standing reviews of a
chronic condition (chronic_review_overdue)."""

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
    other_bookings,
    span,
    visit_for,
    window,
    words,
)
from services.segmenter.domain.journey import Journey, RecordKind
from services.segmenter.domain.params import ClinicParams
from shared.events.common import Segment, SegmentKind, SourceRecord, SourceRecordKind
from shared.events.ehr import FollowUpRecommended
from shared.events.eligibility import LeftReason, ReasonSource


def _source(fu: FollowUpRecommended) -> SourceRecord:
    return SourceRecord(kind=SourceRecordKind.follow_up, id=fu.follow_up_id)


def _plan_details(fu: FollowUpRecommended) -> list[tuple[str, str]]:
    details = [
        ("recommended at visit", fu.visit_id or "outside a visit"),
        ("recommended on", fu.recommended_on.isoformat()),
        ("documented urgency", fu.urgency.value),
    ]
    if fu.reason_text:
        details.append(("plan note (staff only)", fu.reason_text))
    return details


class FollowUpNotBooked(Rule):
    segment = Segment.follow_up_not_booked
    kind = SegmentKind.recall
    prefix = "fu"
    reads = (RecordKind.follow_up, RecordKind.appointment, RecordKind.visit)
    summary = "A visit recommended a follow-up (by a date or an interval) and nothing is booked."

    def evaluate(self, journey: Journey, params: ClinicParams) -> RuleResult:
        p = params.follow_up_not_booked
        one_off = [f for f in journey.follow_ups if not f.recurring]
        if not one_off:
            return RuleResult(notes=("no one-off follow-up recommendation on record",))
        findings = []
        for fu in one_off:
            lines = params.closing_lines(self.segment, fu.service_line)
            after = fu.recommended_on
            ended = met_by(
                booking_for(journey, lines, after_day=after),
                visit_for(journey, lines, after_day=after, exclude=[fu.visit_id]),
            )
            interval = fu.interval_days
            due = fu.due_on or after + timedelta(days=interval or 0)
            what = words(fu.service_line)
            if fu.due_on is None and interval is not None:
                reason = (
                    f"Follow-up for {what} in {span(interval)} recommended on {after} "
                    f"(due {due}); nothing is booked for it"
                )
            else:
                reason = (
                    f"Follow-up for {what} recommended on {after}, due by {due}; "
                    "nothing is booked for it"
                )
            details = [*_plan_details(fu), ("due on", due.isoformat())]
            wrong = other_bookings(journey, lines, after) if ended is None else None
            if wrong:
                details.append(("booked for other services (these do not cover it)", wrong))
            origin = journey.visit(fu.visit_id)
            opens = max(due - timedelta(days=p.lead_days), after)
            findings.append(
                self.finding(
                    journey,
                    params,
                    Draft(
                        source=_source(fu),
                        service_line=fu.service_line,
                        reason=reason,
                        **window(opens, due + timedelta(days=p.grace_days)),
                        documented_urgency=fu.urgency,
                        provider_id=fu.provider_id,
                        location_id=origin.location_id if origin else None,
                        ended=ended,
                        details=tuple(details),
                        documented=documented(
                            ReasonSource.visit if fu.visit_id else ReasonSource.treatment_plan,
                            fu.recommended_on,
                            recorded_at=origin.completed_at if origin else None,
                            due_on=due,
                        ),
                    ),
                )
            )
        return RuleResult(tuple(findings))


class ChronicReviewOverdue(Rule):
    segment = Segment.chronic_review_overdue
    kind = SegmentKind.recall
    prefix = "chr"
    reads = (RecordKind.follow_up, RecordKind.appointment, RecordKind.visit)
    summary = (
        "A standing review with a documented interval (a recurring follow-up) is overdue: "
        "no visit for that care within the interval and nothing booked."
    )

    def evaluate(self, journey: Journey, params: ClinicParams) -> RuleResult:
        standing = [f for f in journey.follow_ups if f.recurring]
        if not standing:
            return RuleResult(notes=("no standing review (recurring follow-up) on record",))
        latest: dict[object, FollowUpRecommended] = {}
        for fu in sorted(standing, key=lambda f: (f.recommended_on, f.follow_up_id)):
            latest[fu.service_line] = fu  # the newest standing plan for a service governs
        findings = []
        for fu in standing:
            governing = latest[fu.service_line]
            if governing is not fu:
                findings.append(self._superseded(journey, params, fu, governing))
                continue
            findings.append(self._review(journey, params, fu))
        return RuleResult(tuple(findings))

    def _review(self, journey: Journey, params: ClinicParams, fu: FollowUpRecommended) -> Finding:
        p = params.chronic_review_overdue
        interval = fu.interval_days or 0
        lines = params.closing_lines(self.segment, fu.service_line)
        last = visit_for(journey, lines, after_day=fu.recommended_on - timedelta(days=1))
        anchor = last.completed_at.date() if last else fu.recommended_on
        due = anchor + timedelta(days=interval)
        opens = due + timedelta(days=p.grace_days)
        ended = met_by(booking_for(journey, lines, after_day=anchor), None)
        renewed = None
        if last is not None and last.visit_id != fu.visit_id:
            renewed = Ending(
                LeftReason.visit_completed,
                SourceRecord(kind=SourceRecordKind.visit, id=last.visit_id),
                f"review visit {last.visit_id} on {anchor} restarted the interval",
            )
        reason = (
            f"{capital(words(fu.service_line))} review every {span(interval)} (standing plan "
            f"of {fu.recommended_on}); last on {anchor}, due {due} and not booked"
        )
        details = [*_plan_details(fu), ("last review", anchor.isoformat()), ("due", str(due))]
        return self.finding(
            journey,
            params,
            Draft(
                source=_source(fu),
                service_line=fu.service_line,
                reason=reason,
                **window(opens, opens + timedelta(days=p.window_days)),
                documented_urgency=fu.urgency,
                provider_id=fu.provider_id,
                location_id=last.location_id if last else None,
                ended=ended,
                renewed=renewed,
                details=tuple(details),
                documented=documented(
                    ReasonSource.surveillance_plan, fu.recommended_on, due_on=due
                ),
            ),
        )

    def _superseded(
        self,
        journey: Journey,
        params: ClinicParams,
        old: FollowUpRecommended,
        new: FollowUpRecommended,
    ) -> Finding:
        ending = Ending(
            LeftReason.superseded,
            SourceRecord(kind=SourceRecordKind.follow_up, id=new.follow_up_id),
            f"a newer standing plan of {new.recommended_on} replaced it",
        )
        start = old.recommended_on
        return self.finding(
            journey,
            params,
            Draft(
                source=_source(old),
                service_line=old.service_line,
                reason=f"{capital(words(old.service_line))} standing review of {start}",
                **window(start, start),
                ended=ending,
                details=tuple(_plan_details(old)),
            ),
        )


follow_up_not_booked = FollowUpNotBooked()
chronic_review_overdue = ChronicReviewOverdue()
