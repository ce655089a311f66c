"""The ten workflows, how segments and service lines are routed to them, and their validation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from services.sequencer.domain.workflows import DEFAULT_WORKFLOWS, Catalogue
from services.sequencer.policy import WorkflowDefinition
from shared.events.common import ClinicalUrgency, Segment, ServiceLine
from shared.events.outreach import Tone

CATALOGUE = Catalogue.default()
TEN = {
    "skin_cancer_surveillance",
    "chronic_review",
    "follow_up",
    "treatment_series",
    "acne_follow_up",
    "cosmetic_maintenance",
    "consult_not_started",
    "cancellation_recovery",
    "lapsed_patient",
    "service_recovery",
}


def test_there_is_one_workflow_per_kind_of_care_never_one_for_everyone() -> None:
    assert {wf.key for wf in DEFAULT_WORKFLOWS} == TEN


@pytest.mark.parametrize("wf", DEFAULT_WORKFLOWS, ids=lambda wf: wf.key)
def test_every_workflow_has_the_four_step_shape_with_its_own_template_keys(wf: object) -> None:
    steps = wf.steps  # type: ignore[attr-defined]
    key = wf.key  # type: ignore[attr-defined]
    assert [s.step for s in steps] == [1, 2, 3, 4]
    assert [s.template_key for s in steps] == [f"{key}.{n}" for n in (1, 2, 3, 4)]
    assert all(s.tone in set(Tone) for s in steps)
    assert all(s.fallback is not s.channel for s in steps)
    assert steps[0].delay == timedelta(0)


@pytest.mark.parametrize(
    ("segment", "line", "expected"),
    [
        (Segment.follow_up_not_booked, ServiceLine.skin_check, "skin_cancer_surveillance"),
        (Segment.follow_up_not_booked, ServiceLine.mohs, "skin_cancer_surveillance"),
        (Segment.chronic_review_overdue, ServiceLine.biopsy_follow_up, "skin_cancer_surveillance"),
        (Segment.follow_up_not_booked, ServiceLine.acne, "acne_follow_up"),
        (Segment.chronic_review_overdue, ServiceLine.isotretinoin, "acne_follow_up"),
        (Segment.follow_up_not_booked, ServiceLine.rosacea, "follow_up"),
        (Segment.chronic_review_overdue, ServiceLine.psoriasis_eczema, "chronic_review"),
        (Segment.series_incomplete, ServiceLine.laser, "treatment_series"),
        (Segment.cosmetic_maintenance_due, ServiceLine.neurotoxin, "cosmetic_maintenance"),
        (Segment.consult_no_treatment, ServiceLine.filler, "consult_not_started"),
        (Segment.cancelled_not_rescheduled, ServiceLine.skin_check, "cancellation_recovery"),
        (Segment.cancelled_not_rescheduled, ServiceLine.neurotoxin, "cancellation_recovery"),
        (Segment.lapsed_patient, ServiceLine.general_dermatology, "lapsed_patient"),
        (Segment.question_no_review, ServiceLine.hair_loss, "follow_up"),
        (Segment.question_no_review, ServiceLine.skin_check, "skin_cancer_surveillance"),
    ],
)
def test_each_segment_and_service_line_goes_to_its_workflow(
    segment: Segment, line: ServiceLine, expected: str
) -> None:
    routed = CATALOGUE.route(segment, line)
    assert routed is not None and routed.key == expected


def test_every_segment_and_service_line_has_a_workflow() -> None:
    for segment in Segment:
        for line in ServiceLine:
            assert CATALOGUE.route(segment, line) is not None, (segment, line)


def test_service_recovery_is_never_routed_from_a_segment() -> None:
    recovery = CATALOGUE.get("service_recovery")
    assert recovery is not None and recovery.routes == ()


def test_only_cosmetic_maintenance_is_marketing_and_it_is_friendly() -> None:
    marketing = {wf.key for wf in DEFAULT_WORKFLOWS if wf.marketing}
    assert marketing == {"cosmetic_maintenance"}
    assert CATALOGUE.get("cosmetic_maintenance").tone is Tone.friendly  # type: ignore[union-attr]
    assert CATALOGUE.get("skin_cancer_surveillance").tone is Tone.clinical  # type: ignore[union-attr]


def test_a_step_never_claims_more_urgency_than_the_plan_documents() -> None:
    wf = CATALOGUE.get("skin_cancer_surveillance")
    assert wf is not None
    assert wf.step(1).urgency_for(ClinicalUrgency.soon) is ClinicalUrgency.soon
    assert wf.step(1).urgency_for(ClinicalUrgency.routine) is ClinicalUrgency.routine
    assert wf.step(4).urgency_for(ClinicalUrgency.urgent) is ClinicalUrgency.routine


def test_a_clinics_own_workflow_wins_its_route() -> None:
    mine = WorkflowDefinition.model_validate(
        {
            "title": "Laser series, e-mail only",
            "routes": [{"segment": "series_incomplete", "service_lines": ["laser"]}],
            "steps": [
                {"delay_days": 0, "channel": "email", "tone": "supportive"},
                {"delay_days": 5, "channel": "email", "tone": "supportive"},
            ],
        }
    ).to_workflow("laser_series")
    catalogue = CATALOGUE.with_overrides([mine])
    assert catalogue.route(Segment.series_incomplete, ServiceLine.laser) is mine
    routed = catalogue.route(Segment.series_incomplete, ServiceLine.phototherapy)
    assert routed is not None and routed.key == "treatment_series"
    assert [s.template_key for s in mine.steps] == ["laser_series.1", "laser_series.2"]


def test_a_workflow_of_more_than_four_steps_is_refused() -> None:
    step = {"delay_days": 1, "channel": "sms", "tone": "clinical"}
    with pytest.raises(ValidationError, match="at most 4"):
        WorkflowDefinition.model_validate({"title": "Too many", "steps": [step] * 5})


def test_a_fallback_on_the_same_channel_is_refused() -> None:
    step = {"delay_days": 0, "channel": "sms", "fallback": "sms", "tone": "clinical"}
    with pytest.raises(ValidationError, match="fallback must differ"):
        WorkflowDefinition.model_validate({"title": "Same twice", "steps": [step]})
