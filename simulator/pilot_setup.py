"""What a rehearsal needs before it starts: the cohort from the command line, and a practice
weighted and sized so that cohort fills its launch group in the pilot's days.

Pure: no stack, no clock. The practice's journeys are weighted so the piloted segment's stories
are ``SEGMENT_SHARE`` of them; a cohort that names service lines also gets those services as
half of the segment's stories (the other half stay, so the filters have something to refuse).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping

from pydantic import ValidationError

from shared.events.common import Segment, ServiceLine
from shared.events.pilot import CohortFilters
from simulator.catalogue import CATALOGUE
from simulator.journeys import VARIANTS
from simulator.model import Journey
from simulator.practice import DEFAULT_MIX

SEGMENT_SHARE = 0.4
NAMED_SHARE = 0.5  # of the segment's stories, when the cohort names service lines
DEFINE_DAYS = 7
SPARE = 1.5  # more patients than the arithmetic says: a cohort that fills is the point
# Where a story's need surfaces, as the journeys place it (simulator/journeys.py): from a few
# days before the start to about four fifths into the horizon.
EARLIEST_DUE, LATEST_DUE_SHARE = -5, 0.8
JOURNEYS_OF = {
    Segment.follow_up_not_booked: (Journey.follow_up,),
    Segment.series_incomplete: (Journey.series,),
    Segment.cancelled_not_rescheduled: (Journey.canceller,),
    Segment.cosmetic_maintenance_due: (Journey.cosmetic,),
    Segment.chronic_review_overdue: (Journey.surveillance, Journey.chronic),
    Segment.question_no_review: (Journey.question,),
    Segment.lapsed_patient: (Journey.lapsed,),
    Segment.consult_no_treatment: (Journey.consult,),
}
LINE_OF = {service.code: service.service_line for service in CATALOGUE}
Variants = dict[Journey, tuple[tuple[str, int], ...]]


class CohortError(ValueError):
    """The command line's cohort cannot be a pilot's (the message says which option)."""


def _listed(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip()) or None


def cohort_of(args: argparse.Namespace) -> CohortFilters:
    """The cohort filters the options name (``--service-lines cosmetic`` for every cosmetic
    service line)."""
    lines = _listed(getattr(args, "service_lines", None))
    if lines == ("cosmetic",):
        lines = tuple(line.value for line in ServiceLine if line.is_cosmetic)
    raw = {
        "service_lines": lines,
        "provider_ids": _listed(getattr(args, "providers", None)),
        "location_ids": _listed(getattr(args, "locations", None)),
        "cancellation_reasons": _listed(getattr(args, "cancellation_reasons", None)),
        "cancelled_by": _listed(getattr(args, "cancelled_by", None)),
        "urgencies": _listed(getattr(args, "urgencies", None)),
        "min_age_days": getattr(args, "min_age_days", None),
        "max_age_days": getattr(args, "max_age_days", None),
    }
    try:
        return CohortFilters.model_validate({k: v for k, v in raw.items() if v is not None})
    except ValidationError as exc:
        first: dict[str, str] = {}
        for e in exc.errors():
            option = "--" + str(e["loc"][0] if e["loc"] else "cohort").replace("_", "-")
            first.setdefault(option, e["msg"])
        raise CohortError("; ".join(f"{o}: {m}" for o, m in first.items())) from None


def pilot_mix(segment: Segment) -> dict[Journey, float]:
    """The default mix of journeys, with the piloted segment's stories SEGMENT_SHARE of it."""
    ours = JOURNEYS_OF[segment]
    theirs = sum(w for j, w in DEFAULT_MIX.items() if j in ours)
    rest = sum(w for j, w in DEFAULT_MIX.items() if j not in ours)
    return {
        j: (SEGMENT_SHARE * w / theirs if j in ours else (1 - SEGMENT_SHARE) * w / rest)
        for j, w in DEFAULT_MIX.items()
    }


def pilot_variants(segment: Segment, cohort: CohortFilters) -> tuple[Variants, float]:
    """The segment's stories reweighted so the cohort's service lines are NAMED_SHARE of them
    (never less than they already are), and the share of the segment's stories the cohort's
    service lines take."""
    if cohort.service_lines is None:
        return {}, 1.0
    named = set(cohort.service_lines)
    out: Variants = {}
    shares = []
    for journey in JOURNEYS_OF[segment]:
        weights = VARIANTS[journey]
        taken = sum(w for code, w in weights if LINE_OF.get(code) in named)
        total = sum(w for _, w in weights)
        if taken == 0:
            raise CohortError(
                f"--service-lines: the synthetic practice has no {segment.value} story for "
                + ", ".join(sorted(line.value for line in named))
            )
        share = taken / total
        if share < NAMED_SHARE and taken < total:
            boost = NAMED_SHARE * (total - taken) / ((1 - NAMED_SHARE) * taken)
            out[journey] = tuple(
                (code, round(w * boost * 100) if LINE_OF.get(code) in named else w * 100)
                for code, w in weights
            )
            share = NAMED_SHARE
        shares.append(share)
    return out, min(shares)


def practice_size(cohort_size: int, days: int, follow_days: int, named_share: float) -> int:
    """Patients enough for ``cohort_size`` needs of the cohort to surface after the launch.

    A story's need surfaces uniformly between EARLIEST_DUE and LATEST_DUE_SHARE of the horizon;
    the launch group fills from the needs surfacing between the launch (day 7) and the end.
    """
    horizon = days + follow_days
    span = LATEST_DUE_SHARE * horizon - EARLIEST_DUE
    enrolling = max(1.0, min(days, LATEST_DUE_SHARE * horizon) - DEFINE_DAYS)
    per_patient = SEGMENT_SHARE * named_share * enrolling / span
    return max(60, math.ceil(SPARE * cohort_size / per_patient))


def mix_and_size(
    segment: Segment, cohort: CohortFilters, cohort_size: int, days: int, follow_days: int
) -> tuple[Mapping[Journey, float], Variants, int]:
    variants, share = pilot_variants(segment, cohort)
    return pilot_mix(segment), variants, practice_size(cohort_size, days, follow_days, share)
