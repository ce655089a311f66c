from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel

from shared.logging import REDACTED, configure_logging, get_logger, is_phi_key, scrub_text
from shared.phi import pseudonym


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """Configure JSON logging into a buffer, and put the root logger back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("segmenter", level="DEBUG", stream=stream)
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    logging.captureWarnings(False)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_the_standard_fields(lines: io.StringIO) -> None:
    get_logger("revisit.test").info("segment %s entered", "lapsed_patient", extra={"n": 3})
    (entry,) = records(lines)
    assert entry["level"] == "INFO" and entry["service"] == "segmenter"
    assert entry["logger"] == "revisit.test"
    assert entry["msg"] == "segment lapsed_patient entered"
    assert entry["n"] == 3
    assert datetime.fromisoformat(entry["ts"]).utcoffset() is not None
    assert "trace_id" not in entry


# "name" itself cannot be an extra (stdlib refuses to overwrite LogRecord.name); it is
# covered nested, in the next test.
@pytest.mark.parametrize(
    "key", ["given", "first_name", "Last-Name", "phone", "email", "dob", "diagnosis", "body"]
)
def test_deny_listed_extra_fields_are_redacted(lines: io.StringIO, key: str) -> None:
    get_logger("t").info("contact updated", extra={key: "Jane Example", "patient_key": "c1:p1"})
    (entry,) = records(lines)
    assert entry[key] == REDACTED
    # The key embeds the EHR's record number: logs carry its keyed hash.
    assert entry["patient_key"] == pseudonym("c1:p1") != "c1:p1"
    assert "Jane" not in lines.getvalue()


def test_deny_listed_fields_nested_in_models_and_dicts_are_redacted(lines: io.StringIO) -> None:
    class Payload(BaseModel):
        patient_key: str
        given: str

    @dataclass
    class Contact:
        mobile: str
        channel: str

    get_logger("t").info(
        "event",
        extra={
            "payload": Payload(patient_key="c1:p1", given="Jane"),
            "contact": Contact(mobile="+15551234567", channel="sms"),
            "meta": {"name": "Jane", "steps": [{"text": "hello Jane"}]},
        },
    )
    (entry,) = records(lines)
    assert entry["payload"] == {"patient_key": pseudonym("c1:p1"), "given": REDACTED}
    assert entry["contact"] == {"mobile": REDACTED, "channel": "sms"}
    assert entry["meta"] == {"name": REDACTED, "steps": [{"text": REDACTED}]}


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("send to +15551234567 now", "send to [phone] now"),
        ("call (555) 123-4567", "call [phone]"),
        ("call 555-123-4567 or 555.987.6543", "call [phone] or [phone]"),
        ("call +44 20 7946 0958", "call [phone]"),
        ("reply from jane.doe+derm@example.co.uk", "reply from [email]"),
    ],
)
def test_phone_numbers_and_emails_are_scrubbed_from_text(raw: str, clean: str) -> None:
    assert scrub_text(raw) == clean


@pytest.mark.parametrize(
    "opaque",
    [
        "event 550e8400-e29b-41d4-a716-446655440000",
        "patient_key clinic-a:5551234567 offset 1732750000",
        "at 2024-01-05T10:00:00+01:00 trace 4bf92f3577b34da6a3ce929d0e0e4736",
    ],
)
def test_opaque_ids_timestamps_and_offsets_are_left_alone(opaque: str) -> None:
    assert scrub_text(opaque) == opaque


def test_rendered_message_and_string_extras_are_scrubbed(lines: io.StringIO) -> None:
    get_logger("t").warning("bounce for %s", "jane@example.com", extra={"note": "tel 555-123-4567"})
    (entry,) = records(lines)
    assert entry["msg"] == "bounce for [email]"
    assert entry["note"] == "tel [phone]"


def test_exception_text_is_scrubbed(lines: io.StringIO) -> None:
    try:
        raise ValueError("no consent for +15551234567 / jane@example.com")
    except ValueError:
        get_logger("t").exception("send failed")
    (entry,) = records(lines)
    assert "ValueError: no consent for [phone] / [email]" in entry["exception"]
    assert "5551234567" not in lines.getvalue() and "jane@" not in lines.getvalue()


def test_trace_and_span_ids_are_included_inside_a_span(lines: io.StringIO) -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("handle") as span:
        get_logger("t").info("inside")
        ids = span.get_span_context()
    (entry,) = records(lines)
    assert entry["trace_id"] == format(ids.trace_id, "032x")
    assert entry["span_id"] == format(ids.span_id, "016x")


def test_extra_that_clashes_with_a_standard_field_is_kept_under_a_prefix(
    lines: io.StringIO,
) -> None:
    get_logger("t").info("x", extra={"service": "spoofed"})
    (entry,) = records(lines)
    assert entry["service"] == "segmenter" and entry["extra_service"] == "spoofed"


def test_configuring_twice_replaces_the_handler_instead_of_doubling_lines(
    lines: io.StringIO,
) -> None:
    configure_logging("segmenter", stream=lines)
    get_logger("t").info("once")
    assert len(records(lines)) == 1


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("segmenter", level="LOUD", stream=io.StringIO())


def test_phi_key_matching_ignores_case_and_dashes_but_not_lookalikes() -> None:
    assert is_phi_key("E-Mail") and is_phi_key("Birth_Date")
    assert not is_phi_key("topic_name") and not is_phi_key("patient_key")
