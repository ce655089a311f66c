"""The two keys every service speaks in: a clinic id and a patient key, with one rule each.

``PatientKey`` is ``<clinic_id>:<patient id in that clinic>``: the Kafka key of every topic, so
one patient's events stay in order on one partition. Both types work as pydantic fields and as
FastAPI path or query parameters (``clinic_id: ClinicId``; ``Annotated[ClinicId, Query()]``);
a value that breaks the rule is refused with a 422 that says what the rule is. The messages never
repeat the value (an error message may be logged).

A clinic id never contains ``:`` (it ends where the patient id starts), ``/`` (it is a path
segment in every service's API), ``*`` (a credential's scope ``"*"`` means every clinic) or
whitespace. A patient id is an EHR record id: no whitespace.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

CLINIC_ID_MAX = 64
PATIENT_KEY_MAX = 200
_CLINIC = r"[^\s:/*]{1,64}"
CLINIC_ID_PATTERN = rf"^{_CLINIC}$"
PATIENT_KEY_PATTERN = rf"^{_CLINIC}:\S+$"
_clinic_id = re.compile(CLINIC_ID_PATTERN)
_patient_key = re.compile(PATIENT_KEY_PATTERN)

CLINIC_ID_RULE = "a clinic id is 1 to 64 characters, without spaces, ':', '/' or '*'"
PATIENT_KEY_RULE = (
    "a patient key is '<clinic id>:<patient id>' (at most 200 characters, no spaces; "
    "the clinic id without ':', '/' or '*')"
)


def _check_clinic_id(value: str) -> str:
    if not _clinic_id.fullmatch(value):
        raise ValueError(CLINIC_ID_RULE)
    return value


def _check_patient_key(value: str) -> str:
    if len(value) > PATIENT_KEY_MAX or not _patient_key.fullmatch(value):
        raise ValueError(PATIENT_KEY_RULE)
    return value


ClinicId = Annotated[
    str,
    AfterValidator(_check_clinic_id),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": CLINIC_ID_MAX,
            "pattern": CLINIC_ID_PATTERN,
            "description": CLINIC_ID_RULE,
            "examples": ["clinic-demo"],
        }
    ),
]
"""A clinic's id, e.g. ``clinic-demo``."""

PatientKey = Annotated[
    str,
    AfterValidator(_check_patient_key),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 3,
            "maxLength": PATIENT_KEY_MAX,
            "pattern": PATIENT_KEY_PATTERN,
            "description": PATIENT_KEY_RULE,
            "examples": ["clinic-demo:p-1"],
        }
    ),
]
"""A patient's key across Revisit, e.g. ``clinic-demo:p-1``."""


def clinic_of(patient_key: str) -> str:
    """The clinic a patient key belongs to (everything before the first ``:``)."""
    return patient_key.partition(":")[0]


def patient_key_of(clinic_id: str, patient_id: str) -> str:
    """The key of ``patient_id`` in ``clinic_id`` (the inverse of :func:`clinic_of`)."""
    return f"{clinic_id}:{patient_id}"
