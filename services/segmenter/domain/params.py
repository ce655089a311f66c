"""Each clinic's segment parameters, with dermatology defaults.

A clinic stores only what it overrides (one block per segment, or ``general``); everything else
comes from these defaults. Intervals are whole days: "18 months" is 548 days.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.events.common import ClinicalUrgency, Purpose, Segment, ServiceLine
from shared.events.ehr import CancellationReason
from shared.events.escalations import Severity
from shared.rebooking import DEFAULT_COVERED_BY, closing_lines

DayCount = Annotated[int, Field(ge=0, le=3650)]
PositiveDays = Annotated[int, Field(ge=1, le=3650)]

DEFAULT_PRIORITY: tuple[Segment, ...] = (
    Segment.follow_up_not_booked,
    Segment.cancelled_not_rescheduled,
    Segment.chronic_review_overdue,
    Segment.series_incomplete,
    Segment.question_no_review,
    Segment.consult_no_treatment,
    Segment.lapsed_patient,
    Segment.cosmetic_maintenance_due,
)
_FIELD = {segment: segment.value for segment in Segment}
DEFAULT_COSMETIC: tuple[ServiceLine, ...] = tuple(s for s in ServiceLine if s.is_cosmetic)


class Block(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GeneralParams(Block):
    """Rules that span segments: overlap priority, what counts as cosmetic, what covers what."""

    priority: tuple[Segment, ...] = Field(
        default=DEFAULT_PRIORITY,
        description="Segments from most to least important; clinical needs always come before "
        "cosmetic ones, then urgency, then this order.",
    )
    cosmetic_service_lines: tuple[ServiceLine, ...] = Field(
        default=DEFAULT_COSMETIC,
        description="Elective services: outreach for them needs marketing consent and ranks "
        "after every clinical need, unless the treatment plan documents a medical purpose "
        "(a laser or peel series can be care).",
    )
    covered_by: dict[ServiceLine, tuple[ServiceLine, ...]] = Field(
        default=dict(DEFAULT_COVERED_BY),
        description="A booking or visit for any of these services also meets a need for the "
        "key service (the same service always does).",
    )
    urgency_cap: ClinicalUrgency = Field(
        default=ClinicalUrgency.urgent,
        description="Outreach never claims more urgency than this (or than the record says).",
    )
    recovery_severity: Severity = Field(
        default=Severity.normal, description="Severity of the service-recovery escalation."
    )
    recovery_lookback_days: PositiveDays | None = Field(
        default=None,
        description="Poor feedback older than this does not open service recovery; none (the "
        "default): however old, while it is the patient's last recorded experience and no "
        "person has resolved it.",
    )
    hold_outreach: bool = Field(
        default=False,
        description="While the practice's history loads (`revisit backfill`): needs are found "
        "and kept, nothing is emitted (no eligibility, no service-recovery case); turning it off "
        "re-evaluates every patient once, at that moment, with the whole history in.",
    )

    @field_validator("priority")
    @classmethod
    def _every_segment_once(cls, value: tuple[Segment, ...]) -> tuple[Segment, ...]:
        if sorted(value) != sorted(Segment):
            raise ValueError("priority must list every segment exactly once")
        return value

    @field_validator("cosmetic_service_lines")
    @classmethod
    def _unique(cls, value: tuple[ServiceLine, ...]) -> tuple[ServiceLine, ...]:
        if len(set(value)) != len(value):
            raise ValueError("cosmetic_service_lines lists a service twice")
        return value


class RuleBlock(Block):
    enabled: bool = True


class FollowUpParams(RuleBlock):
    lead_days: DayCount = Field(default=14, description="Surface this many days before due.")
    grace_days: DayCount = Field(default=90, description="Window closes this long after due.")


class SeriesParams(RuleBlock):
    grace_days: DayCount = Field(
        default=7, description="Surface when the next session is this late (interval + 7 d)."
    )
    window_days: PositiveDays = Field(default=90, description="Window length once surfaced.")


class CancellationParams(RuleBlock):
    delay_hours: Annotated[int, Field(ge=0, le=720)] = Field(
        default=2, description="Surface this long after the cancellation or no-show."
    )
    window_days: PositiveDays = Field(default=30, description="Window closes this long after.")
    include_no_shows: bool = True
    include_practice_cancellations: bool = True
    skip_reasons: tuple[CancellationReason, ...] = Field(
        default=(CancellationReason.entered_in_error,),
        description="Cancellation reasons that never make a patient eligible.",
    )


class CosmeticParams(RuleBlock):
    maintenance_days: dict[ServiceLine, PositiveDays] = Field(
        default={
            ServiceLine.neurotoxin: 90,
            ServiceLine.filler: 270,
            ServiceLine.chemical_peel: 90,
            ServiceLine.microneedling: 180,
            ServiceLine.laser: 365,
        },
        description="Maintenance interval per cosmetic service, from the last treatment.",
    )
    lead_days: DayCount = Field(default=14, description="Surface this long before the window.")
    window_days: PositiveDays = Field(default=60, description="Window stays open this long.")


class ChronicParams(RuleBlock):
    grace_days: DayCount = Field(
        default=14, description="Overdue this long after the documented interval."
    )
    window_days: PositiveDays = Field(default=180, description="Window length once overdue.")


class QuestionParams(RuleBlock):
    review_within_days: PositiveDays = Field(
        default=7, description="Review window when the question's triage gives none."
    )
    wait_days: DayCount = Field(
        default=1, description="Give the patient this long to book before reaching out."
    )
    grace_days: DayCount = Field(default=14, description="Window closes this long after.")


class LapsedParams(RuleBlock):
    min_visits: Annotated[int, Field(ge=1, le=100)] = 2
    lapse_days: PositiveDays = Field(default=548, description="18 months without a visit.")
    window_days: PositiveDays = Field(default=365, description="Window length once lapsed.")


class ConsultParams(RuleBlock):
    wait_days: DayCount = Field(
        default=21,
        description="Surface when the treatment has not started after this long "
        "(sooner if the consult asked for a start within fewer days).",
    )
    window_days: PositiveDays = Field(default=90, description="Window length once surfaced.")


class ClinicParams(Block):
    general: GeneralParams = GeneralParams()
    follow_up_not_booked: FollowUpParams = FollowUpParams()
    series_incomplete: SeriesParams = SeriesParams()
    cancelled_not_rescheduled: CancellationParams = CancellationParams()
    cosmetic_maintenance_due: CosmeticParams = CosmeticParams()
    chronic_review_overdue: ChronicParams = ChronicParams()
    question_no_review: QuestionParams = QuestionParams()
    lapsed_patient: LapsedParams = LapsedParams()
    consult_no_treatment: ConsultParams = ConsultParams()

    def rule(self, segment: Segment) -> RuleBlock:
        block: RuleBlock = getattr(self, _FIELD[segment])
        return block

    def is_cosmetic(self, line: ServiceLine) -> bool:
        return line in self.general.cosmetic_service_lines

    def closing_lines(
        self, segment: Segment, line: ServiceLine, *, line_documented: bool = True
    ) -> frozenset[ServiceLine] | None:
        """The service lines whose booking meets this need (None: any booking), by the rule
        metrics shares (``shared/rebooking.py``), with this clinic's ``covered_by``."""
        return closing_lines(
            segment, line, self.general.covered_by, line_documented=line_documented
        )

    def needs_marketing(self, line: ServiceLine, documented: Purpose | None = None) -> bool:
        """Whether outreach for this care is marketing: the plan's documented purpose when it
        has one, else the service line's usual purpose for this clinic."""
        if documented is not None:
            return documented is Purpose.marketing
        return self.is_cosmetic(line)


BLOCK_NAMES: tuple[str, ...] = tuple(ClinicParams.model_fields)
DEFAULTS = ClinicParams()


def block_model(name: str) -> type[Block]:
    """The model of one block (``general`` or a segment name); KeyError if unknown."""
    if name not in ClinicParams.model_fields:
        raise KeyError(name)
    annotation: Any = ClinicParams.model_fields[name].annotation
    return annotation  # type: ignore[no-any-return]


def effective(overrides: dict[str, Any] | None) -> ClinicParams:
    """Defaults with a clinic's stored overrides applied (each block replaced whole)."""
    return ClinicParams.model_validate(overrides or {})
