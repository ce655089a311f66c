"""Schemathesis over every service's OpenAPI, with a valid admin credential: whatever a
caller sends, no route answers 5xx, and a declared response matches its declared schema.

Bounded: a few generated requests per operation (``EXAMPLES``), every operation of every
service, against the real services (tests/security/conftest.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.security.conftest import SERVICES, Stack, token

pytestmark = [
    pytest.mark.integration,
    # schemathesis's own strategies use `random`; hypothesis warns about it on every example.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]
EXAMPLES = 3


def fuzz(url: str, headers: dict[str, str]) -> tuple[int, list[str]]:
    """Calls every operation EXAMPLES times; returns the calls made and the failures."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    calls, failures = 0, []
    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def call(case: Any) -> None:
            nonlocal calls
            calls += 1
            response = case.call(base_url=url, headers=headers, timeout=30, allow_redirects=False)
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        try:
            call()
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis groups its failures
            failures.append(f"{operation.method.upper()} {operation.path}: {describe(exc)}")
    return calls, failures


def describe(exc: BaseException) -> str:
    """The first lines of each failure schemathesis reports (not the whole reproduction)."""
    found = getattr(exc, "exceptions", None) or [exc]
    parts = []
    for failure in found:
        lines = [line.strip() for line in str(failure).splitlines() if line.strip()]
        parts.append(" | ".join(lines[:4])[:400])
    return " || ".join(parts)


# Seen answering 422 with a string (HTTPException(422, "...")) where their OpenAPI declares
# FastAPI's list of problems: clients cope (the console reads both), the description is wrong.
# Which of them a run meets depends on the data generated, so the main test tolerates this one
# kind of mismatch on any route, and the strict xfail below fails until every 422 conforms.
DECLARED_422_DIFFERS = (
    "ingest: POST /fhir/r4, PUT /fhir/r4/{kind}/{resource_id}, POST /hl7v2; "
    "segmenter: PUT /clinics/{clinic_id}/segment-params/{block}; sequencer: GET /sequences; "
    "messenger: POST /templates, POST /inbox/conversations/{patient_key}/replies, "
    "POST /sandbox/reply; escalation: POST /cases/{escalation_id}/notes, "
    "PUT /clinics/{clinic_id}/routing-rules, PUT /clinics/{clinic_id}/notifiers/{notifier_id}"
)


def split(failures: list[str]) -> tuple[list[str], set[str]]:
    """Server errors and undeclared shapes, and the routes whose 422 only differs."""
    hard, differing = [], set()
    for failure in failures:
        route, _, what = failure.partition(": ")
        only_422 = all(
            "Response violates schema" in part and "status code 422" in part
            for part in what.split(" || ")
        )
        (differing.add(route) if only_422 else hard.append(failure))
    return hard, differing


@pytest.fixture(scope="module")
def fuzzed(stack: Stack) -> dict[str, tuple[int, list[str]]]:
    admin = token("admin", "*", subject="fuzz-admin")
    return {service: fuzz(stack.urls[service], admin) for service in SERVICES}


@pytest.mark.parametrize("service", SERVICES)
def test_no_generated_request_breaks_a_route_or_its_declared_response(
    fuzzed: dict[str, tuple[int, list[str]]], service: str
) -> None:
    calls, failures = fuzzed[service]
    assert calls >= EXAMPLES, "nothing was called"
    hard, _differing = split(failures)
    assert not hard, "\n\n".join(hard)


@pytest.mark.xfail(
    strict=True,
    reason="routes answer 422 with a string their OpenAPI does not declare: "
    + DECLARED_422_DIFFERS,
)
def test_every_422_matches_its_declared_shape(fuzzed: dict[str, tuple[int, list[str]]]) -> None:
    differing = {s: split(f)[1] for s, (_n, f) in fuzzed.items()}
    assert not any(differing.values()), differing
