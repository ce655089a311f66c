"""Cohort filters: one screening, shared by the sequencer (enrol or hold) and metrics (the
previous weeks), that takes a need only when its recorded facts show it belongs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from shared.events.common import (
    ClinicalUrgency,
    Initiator,
    Segment,
    SegmentKind,
    ServiceLine,
    SourceRecord,
    SourceRecordKind,
)
from shared.events.ehr import CancellationReason
from shared.events.eligibility import MissedAppointment, PatientBecameEligible
from shared.events.pilot import CohortFilters
from shared.pilots import NeedFacts, describe, screen

AT = datetime(2026, 3, 20, 15, 0, tzinfo=UTC)
CNR = Segment.cancelled_not_rescheduled


def need(**kw: object) -> NeedFacts:
    base: dict[str, object] = {
        "segment": CNR,
        "service_line": ServiceLine.neurotoxin,
        "provider_id": "dr-2",
        "location_id": "loc-north",
        "urgency": ClinicalUrgency.routine,
        "due_on": date(2026, 3, 10),
        "missed_reason": "schedule_conflict",
        "cancelled_by": Initiator.patient,
    }
    return NeedFacts(**{**base, **kw})  # type: ignore[arg-type]


def test_no_filter_takes_the_whole_segment_and_nothing_else() -> None:
    assert screen(CNR, CohortFilters(), need(), AT).taken
    other = screen(CNR, CohortFilters(), need(segment=Segment.lapsed_patient), AT)
    assert not other.taken and other.why == (
        "segment lapsed_patient, not cancelled_not_rescheduled",
    )


@pytest.mark.parametrize(
    ("filters", "taken", "left_out"),
    [
        ({"service_lines": ("neurotoxin", "filler")}, need(), need(service_line=ServiceLine.mohs)),
        ({"provider_ids": ("dr-2",)}, need(), need(provider_id="dr-9")),
        ({"location_ids": ("loc-north",)}, need(), need(location_id=None)),
        ({"cancellation_reasons": ("schedule_conflict", "cost")}, need(),
         need(missed_reason="illness")),
        ({"cancellation_reasons": ("no_show",)}, need(missed_reason="no_show"), need()),
        ({"cancelled_by": ("patient",)}, need(), need(cancelled_by=Initiator.practice)),
        ({"urgencies": ("soon", "urgent")}, need(urgency=ClinicalUrgency.soon), need()),
        ({"max_age_days": 10}, need(), need(due_on=date(2026, 3, 1))),
        ({"min_age_days": 5}, need(), need(due_on=date(2026, 3, 19))),
    ],
)  # fmt: skip
def test_each_filter_takes_the_needs_that_record_its_values(
    filters: dict[str, object], taken: NeedFacts, left_out: NeedFacts
) -> None:
    cohort = CohortFilters.model_validate(filters)
    assert screen(CNR, cohort, taken, AT).taken
    out = screen(CNR, cohort, left_out, AT)
    assert not out.taken and len(out.why) == 1


def test_the_reasons_say_what_matched_and_exactly_what_did_not() -> None:
    cohort = CohortFilters(
        service_lines=(ServiceLine.neurotoxin,),
        cancelled_by=(Initiator.patient,),
        max_age_days=30,
    )
    assert screen(CNR, cohort, need(), AT).why == (
        "segment cancelled_not_rescheduled",
        "service line neurotoxin",
        "cancelled by patient",
        "the need is 10 days old",
    )
    no_show = need(service_line=ServiceLine.acne, missed_reason="no_show", cancelled_by=None)
    assert screen(CNR, cohort, no_show, AT).why == (
        "service line acne is not one the cohort names (neurotoxin)",
        "no cancelled by recorded (the cohort names patient)",
    )


def test_a_need_that_does_not_record_a_filtered_fact_is_left_out_never_guessed_in() -> None:
    cohort = CohortFilters(cancellation_reasons=("cost",))
    unknown = screen(CNR, cohort, need(missed_reason=None), AT)
    assert not unknown.taken and "no cancellation reason recorded" in unknown.why[0]


def test_the_need_facts_come_from_the_eligibility_itself() -> None:
    event = PatientBecameEligible(
        eligibility_id="e-1",
        segment=CNR,
        kind=SegmentKind.reactivation,
        service_line=ServiceLine.filler,
        reason="Filler appointment on 2026-03-10 was cancelled; nothing is booked to replace it",
        source_record=SourceRecord(kind=SourceRecordKind.appointment, id="a-1"),
        due_at=datetime(2026, 3, 10, 17, 0, tzinfo=UTC),
        needs_marketing_consent=True,
        provider_id="dr-2",
        missed=MissedAppointment(cancelled_by=Initiator.patient, reason=CancellationReason.cost),
    )
    facts = NeedFacts.of(event)
    assert (facts.service_line, facts.due_on, facts.missed_reason) == (
        ServiceLine.filler, date(2026, 3, 10), "cost",
    )  # fmt: skip
    assert facts.cancelled_by is Initiator.patient and facts.location_id is None
    no_show = event.model_copy(update={"missed": MissedAppointment(no_show=True)})
    assert (NeedFacts.of(no_show).missed_reason, NeedFacts.of(no_show).cancelled_by) == (
        "no_show", None,
    )  # fmt: skip
    assert facts.as_dict()["due_on"] == "2026-03-10"
    assert replace(facts, due_on=date(2026, 3, 25)).age_days(AT) == 0  # never negative


def test_the_definition_reads_as_one_line_and_bad_filters_are_refused() -> None:
    cohort = CohortFilters(service_lines=(ServiceLine.neurotoxin, ServiceLine.filler),
                           cancelled_by=(Initiator.patient,), max_age_days=14)  # fmt: skip
    assert describe(CNR, cohort) == (
        "segment cancelled_not_rescheduled; service lines: neurotoxin, filler; cancelled by: "
        "patient; at most 14 days old"
    )
    with pytest.raises(ValidationError, match="cancellation reason codes or no_show"):
        CohortFilters.model_validate({"cancellation_reasons": ["rain"]})
    with pytest.raises(ValidationError, match="min_age_days must not be above max_age_days"):
        CohortFilters(min_age_days=9, max_age_days=3)
    with pytest.raises(ValidationError, match="at least 1 item"):
        CohortFilters.model_validate({"service_lines": []})
