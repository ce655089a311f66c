"""Pseudonymous patient keys and scrubbed exception text, in logs and in exported spans."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from shared import phi
from shared.logging import configure_logging, get_logger
from shared.telemetry import attach_exporter

# Synthetic: what a driver or a validator would quote back from a refused row.
DRIVER_ERROR = (
    "(sqlalchemy.dialects.postgresql.asyncpg.IntegrityError) duplicate key value violates unique "
    'constraint "contacts_phone"\nDETAIL:  Key (phone, given_name)=(+15555550123, Marisol) '
    "already exists.\n[SQL: INSERT INTO messenger.contacts (phone) VALUES ($1)]\n"
    "[parameters: ('Marisol Quintanilla', '1981-07-14', 'MRN-88231')]\n"
    "(Background on this error at: https://sqlalche.me/e/20/gkpj)"
)
VALIDATION_ERROR = (
    "1 validation error for Contact\nbirth_date\n  Input should be a valid date "
    "[type=date_from_datetime_parsing, input_value='Marisol Quintanilla 1981-07-14', "
    "input_type=str]"
)
PLANTED = ("Marisol", "Quintanilla", "1981-07-14", "MRN-88231", "+15555550123")


def test_a_pseudonym_is_stable_keyed_and_never_the_key() -> None:
    phi.configure_pseudonym_key("k" * 32)
    first = phi.pseudonym("clinic-a:MRN-88231")
    assert first == phi.pseudonym("clinic-a:MRN-88231")
    assert first.startswith("pk_") and "88231" not in first
    assert phi.pseudonym(first) == first  # already a pseudonym: not hashed twice
    phi.configure_pseudonym_key("another key " + "x" * 20)
    assert phi.pseudonym("clinic-a:MRN-88231") != first


@pytest.mark.parametrize("text", [DRIVER_ERROR, VALIDATION_ERROR])
def test_exception_text_loses_the_values_it_quoted_but_keeps_what_went_wrong(text: str) -> None:
    scrubbed = phi.scrub_exception(text)
    for value in PLANTED:
        assert value not in scrubbed
    assert "duplicate key" in scrubbed or "valid date" in scrubbed


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("messenger", level="DEBUG", stream=stream)
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    logging.captureWarnings(False)


def test_a_logged_exception_carries_no_quoted_values(lines: io.StringIO) -> None:
    try:
        raise RuntimeError(DRIVER_ERROR)
    except RuntimeError:
        get_logger("t").exception(
            "contact not saved",
            extra={"patient_key": "clinic-a:MRN-88231", "error": VALIDATION_ERROR},
        )
    entry = json.loads(lines.getvalue())
    assert "duplicate key" in entry["exception"]
    for value in PLANTED:
        assert value not in lines.getvalue()
    assert entry["patient_key"] == phi.pseudonym("clinic-a:MRN-88231")


def test_a_recorded_exception_and_the_request_url_leave_the_span_clean() -> None:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    attach_exporter(provider, exporter, batch=False)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("GET /patients/{patient_key}/contacts") as span:
        span.set_attribute("http.route", "/patients/{patient_key}/contacts")
        span.set_attribute("http.target", "/patients/clinic-a:MRN-88231/contacts?dob=1981-07-14")
        span.set_attribute("url.query", "patient_key=clinic-a:MRN-88231")
        span.set_attribute("messaging.kafka.message.key", "clinic-a:MRN-88231")
        span.record_exception(ValueError(VALIDATION_ERROR))
        span.set_status(Status(StatusCode.ERROR, DRIVER_ERROR))
    (exported,) = exporter.get_finished_spans()
    rendered = exported.to_json()
    for value in (*PLANTED, "clinic-a:MRN-88231"):
        assert value not in rendered
    assert exported.attributes is not None
    assert exported.attributes["http.target"] == "/patients/{patient_key}/contacts"
    assert exported.attributes["messaging.kafka.message.key"] == phi.pseudonym("clinic-a:MRN-88231")
    assert "valid date" in rendered
