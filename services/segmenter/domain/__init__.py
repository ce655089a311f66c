"""The segmenter's pure core: journeys, the eight segment rules, memberships, service recovery.

No I/O here: the handlers load a :class:`PatientState`, call :func:`decide` with "now" and the
clinic's :class:`ClinicParams`, then save the new state and stage the events it returns.
"""

from services.segmenter.domain.decide import (
    PatientState,
    decide,
    decide_batch,
    evaluate,
    findings_of,
)
from services.segmenter.domain.findings import Finding, Rule, RuleResult, Status
from services.segmenter.domain.journey import Journey, Record, RecordKind
from services.segmenter.domain.memberships import Membership, MembershipStatus
from services.segmenter.domain.params import ClinicParams
from services.segmenter.domain.rules import RULES, evaluate_all

__all__ = [
    "RULES",
    "ClinicParams",
    "Finding",
    "Journey",
    "Membership",
    "MembershipStatus",
    "PatientState",
    "Record",
    "RecordKind",
    "Rule",
    "RuleResult",
    "Status",
    "decide",
    "decide_batch",
    "evaluate",
    "evaluate_all",
    "findings_of",
]
