"""A pilot's cohort definition and plan, as they travel on ``SequenceStarted``.

The sequencer owns pilots; metrics needs the same definition to apply it to the weeks before
the pilot (the previous process) and the plan's dates to number its weeks. Both read these
values and screen with ``shared/pilots.py``, so the cohort means the same thing in both.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from shared.events.common import (
    ClinicalUrgency,
    Id,
    Initiator,
    Instant,
    Segment,
    ServiceLine,
    Value,
)
from shared.events.ehr import CancellationReason

NO_SHOW = "no_show"
MISSED_REASONS: frozenset[str] = frozenset({NO_SHOW, *(r.value for r in CancellationReason)})
AgeDays = Annotated[int, Field(ge=0, le=3650)]


class CohortFilters(Value):
    """Who, of a segment's eligible patients, a pilot takes. Every filter left out (None) takes
    everyone; a filter given takes only the needs whose recorded fact is among its values (a
    need that does not record the fact is left out, never guessed in)."""

    service_lines: tuple[ServiceLine, ...] | None = Field(None, min_length=1)
    provider_ids: tuple[Id, ...] | None = Field(None, min_length=1, max_length=200)
    location_ids: tuple[Id, ...] | None = Field(None, min_length=1, max_length=200)
    # CancellationReason values, or "no_show" (cancelled_not_rescheduled needs only).
    cancellation_reasons: tuple[str, ...] | None = Field(None, min_length=1)
    cancelled_by: tuple[Initiator, ...] | None = Field(None, min_length=1)
    urgencies: tuple[ClinicalUrgency, ...] | None = Field(None, min_length=1)
    # The need's age: whole days since it came due (a cancellation: since it was recorded).
    min_age_days: AgeDays | None = None
    max_age_days: AgeDays | None = None

    @field_validator("cancellation_reasons")
    @classmethod
    def _known_reasons(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not set(value) <= MISSED_REASONS:
            raise ValueError(
                "cancellation_reasons must be cancellation reason codes or no_show: "
                + ", ".join(sorted(MISSED_REASONS))
            )
        return value

    @model_validator(mode="after")
    def _ages_in_order(self) -> CohortFilters:
        low, high = self.min_age_days, self.max_age_days
        if low is not None and high is not None and low > high:
            raise ValueError("min_age_days must not be above max_age_days")
        return self


class PilotPlan(Value):
    """A running pilot's definition and dates, stamped on each of its SequenceStarted."""

    segment: Segment
    cohort: CohortFilters = CohortFilters()
    starts_at: Instant  # week 1 (define) begins
    launched_at: Instant  # enrolment opened (week 2, launch)
    ends_at: Instant  # enrolment closes
    # The previous process: the same cohort, eligible in these many days before the launch.
    baseline_days: Annotated[int, Field(ge=7, le=365)] = 28
