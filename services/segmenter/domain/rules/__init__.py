"""The eight segment rules, each a named object, and the evaluation of all of them at once."""

from __future__ import annotations

from services.segmenter.domain.findings import Rule, RuleResult
from services.segmenter.domain.journey import Journey, RecordKind
from services.segmenter.domain.params import ClinicParams
from services.segmenter.domain.rules.appointments import cancelled_not_rescheduled
from services.segmenter.domain.rules.consults import consult_no_treatment
from services.segmenter.domain.rules.cosmetic import cosmetic_maintenance_due
from services.segmenter.domain.rules.follow_ups import chronic_review_overdue, follow_up_not_booked
from services.segmenter.domain.rules.lapsed import lapsed_patient
from services.segmenter.domain.rules.questions import question_no_review
from services.segmenter.domain.rules.series import series_incomplete
from shared.events.common import Segment

RULES: dict[Segment, Rule] = {
    rule.segment: rule
    for rule in (
        follow_up_not_booked,
        series_incomplete,
        cancelled_not_rescheduled,
        cosmetic_maintenance_due,
        chronic_review_overdue,
        question_no_review,
        lapsed_patient,
        consult_no_treatment,
    )
}
assert set(RULES) == set(Segment), "every segment has exactly one rule"


_OFF = RuleResult(notes=("this clinic has turned the segment off",))


_plans: dict[int, tuple[ClinicParams, tuple[tuple[Segment, Rule, bool], ...]]] = {}


def _plan(params: ClinicParams) -> tuple[tuple[Segment, Rule, bool], ...]:
    """Each rule with whether the clinic has it on (computed once per parameter set; the
    entry keeps its parameters alive, so their id cannot be reused while it is cached)."""
    entry = _plans.get(id(params))
    if entry is None or entry[0] is not params:
        if len(_plans) > 1024:
            _plans.clear()
        entry = (params, tuple((s, rule, params.rule(s).enabled) for s, rule in RULES.items()))
        _plans[id(params)] = entry
    return entry[1]


def evaluate_all(journey: Journey, params: ClinicParams) -> dict[Segment, RuleResult]:
    """Every rule's findings for this journey (nothing at all for a deceased or inactive one)."""
    if journey.deceased or journey.inactive:
        why = "patient is recorded as deceased" if journey.deceased else "patient record inactive"
        return {segment: RuleResult(notes=(why,)) for segment in Segment}
    results: dict[Segment, RuleResult] = {}
    tokens, base, memo = journey.tokens, journey.base, journey.memo
    patient = tokens.get(RecordKind.patient, base)  # the patient's time zone is in every finding
    for segment, rule, enabled in _plan(params):
        if not enabled:
            results[segment] = _OFF
            continue
        key = (params, patient, *[tokens.get(k, base) for k in rule.reads])
        hit = memo.get(segment)
        if hit is not None and hit[0] == key:
            results[segment] = hit[1]
        else:
            results[segment] = result = rule.evaluate(journey, params)
            memo[segment] = (key, result)
    return results


__all__ = [
    "RULES",
    "cancelled_not_rescheduled",
    "chronic_review_overdue",
    "consult_no_treatment",
    "cosmetic_maintenance_due",
    "evaluate_all",
    "follow_up_not_booked",
    "lapsed_patient",
    "question_no_review",
    "series_incomplete",
]
