"""JSON logs, one object per line, with a guard that keeps PHI out of them.

Inside the ``shared`` package this module is ``shared.logging``; ``import logging`` below is an
absolute import (Python 3), so it still resolves to the standard library.

The guard is a backstop, not a licence: code should log opaque keys (``patient_key``,
``event_id``) and nothing else. The guard catches the usual slips: a deny-listed field name
passed in ``extra``, and phone numbers or e-mail addresses rendered into a message, a string
field or an exception.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

from shared.phi import is_patient_key_field, pseudonym, scrub_exception

REDACTED = "[redacted]"

# Field names that name PHI. Matched after lower-casing and turning "-" into "_", so
# "First-Name" and "first_name" are both caught. Exact matches only: a suffix rule would also
# swallow operational fields such as "topic_name" or "messaging.destination.name".
PHI_DENY_KEYS: frozenset[str] = frozenset(
    {
        "name",
        "first_name",
        "last_name",
        "full_name",
        "patient_name",
        "given",
        "family",
        "phone",
        "phone_number",
        "mobile",
        "email",
        "e_mail",
        "email_address",
        "address",
        "birth_date",
        "date_of_birth",
        "dob",
        "diagnosis",
        "condition",
        "body",
        "text",
        "message_body",
        "content",
    }
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# E.164 and international with separators: "+15551234567", "+44 20 7946 0958".
_PHONE_INTL = re.compile(r"(?<![\w+])\+[1-9](?:[ .-]?\d){6,14}(?!\d)")
# US numbers written with separators or parentheses: "555-123-4567", "(555) 123-4567",
# "1-555-123-4567", "+1 (555) 123-4567". A bare run of ten digits is deliberately NOT matched:
# epoch seconds, Kafka offsets and numeric patient ids look exactly like that, and scrubbing
# them would blind ops (E.164, the form the messenger stores, is caught above).
_PHONE_US = re.compile(
    r"(?<![\w+-])(?:\+?1[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w-])"
)

# Nested extras are walked this deep; deeper values are dropped rather than risk printing them.
_MAX_DEPTH = 6


def is_phi_key(key: str) -> bool:
    """True when a field with this name must never be logged or traced."""
    return key.lower().replace("-", "_") in PHI_DENY_KEYS


def scrub_text(text: str) -> str:
    """Replace phone-number-like and e-mail-like substrings with placeholders."""
    # Cheap pre-checks skip the regexes for the common case of a message with neither.
    if "@" in text:
        text = _EMAIL.sub("[email]", text)
    if any(ch.isdigit() for ch in text):
        text = _PHONE_INTL.sub("[phone]", text)
        text = _PHONE_US.sub("[phone]", text)
    return text


def sanitize(value: Any, _depth: int = 0) -> Any:
    """Return a JSON-ready copy of ``value`` with PHI keys redacted and strings scrubbed.

    Objects are rendered through their structure (pydantic ``model_dump``, dataclasses) before
    falling back to ``str``, so a deny-listed field nested inside an event payload is still
    redacted instead of being flattened into one opaque string.
    """
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if _depth >= _MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return redact_fields(value, _depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        return [sanitize(item, _depth + 1) for item in value]
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return sanitize(model_dump(mode="json"), _depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sanitize(dataclasses.asdict(value), _depth + 1)
    return scrub_text(str(value))


def redact_fields(fields: Mapping[Any, Any], _depth: int = 0) -> dict[str, Any]:
    """Redact deny-listed keys and sanitize every other value of a mapping."""
    clean: dict[str, Any] = {}
    for key, value in fields.items():
        name = str(key)
        clean[name] = _field_value(name, value, _depth)
    return clean


# Fields that carry an error's text by convention: scrubbed like an exception.
_ERROR_FIELDS = frozenset({"error", "exception", "detail", "last_error", "failure"})


def _field_value(name: str, value: Any, depth: int = 0) -> Any:
    if is_phi_key(name):
        return REDACTED
    if isinstance(value, str) and name in _ERROR_FIELDS:
        return scrub_exception(value)
    if isinstance(value, str) and is_patient_key_field(name):
        # The key embeds the EHR's record number: logs carry its keyed hash instead.
        return pseudonym(value)
    return sanitize(value, depth)


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES: frozenset[str] = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName"}
_RESERVED_OUTPUT = frozenset(
    {"ts", "level", "service", "logger", "msg", "trace_id", "span_id", "exception", "stack"}
)


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object; PHI guard applied to every field."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": scrub_text(record.getMessage()),
        }
        # The formatter runs on the logging thread of the caller, so the current span is the
        # one that was active when the record was emitted.
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRIBUTES or key.startswith("_"):
                continue
            # Fixed fields win; a clashing extra is kept under a prefixed name, not dropped.
            out_key = f"extra_{key}" if key in _RESERVED_OUTPUT else key
            entry[out_key] = _field_value(key, value)
        if record.exc_info:
            entry["exception"] = scrub_exception(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = scrub_exception(record.exc_text)
        if record.stack_info:
            entry["stack"] = scrub_text(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class _RevisitHandler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installed, so a second configure replaces it."""


def configure_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record of this process to ``stream`` as JSON lines.

    ``stream`` defaults to ``sys.stderr`` read at call time (not at import), so test capture
    and redirected stderr are honoured. Calling again replaces the previous configuration.
    """
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if isinstance(existing, _RevisitHandler):
            root.removeHandler(existing)
            existing.close()
    handler = _RevisitHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root.addHandler(handler)
    root.setLevel(numeric_level)
    # warnings.warn() texts go through the same guard instead of raw stderr.
    logging.captureWarnings(True)


def get_logger(name: str) -> logging.Logger:
    """The stdlib logger ``name``; pass PHI-free facts as ``extra={"patient_key": ...}``."""
    return logging.getLogger(name)
