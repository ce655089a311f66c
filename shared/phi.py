"""Keeping patient data inside the database: pseudonymous keys and scrubbed exception text.

``patient_key`` embeds the EHR's record number, so wherever it leaves the database in a log
line, a span or a metric exemplar it travels as a keyed hash (:func:`pseudonym`). The key comes
from settings (``REVISIT_PSEUDONYM_KEY``); the same key gives the same pseudonym in every
service, so an operator can still follow one patient across logs and traces, and with the key
(and the database) map a pseudonym back by hashing the candidate keys.

Exception text is the other leak: a driver error quotes the row it refused
(``DETAIL: Key (phone)=(+1555...)``), a validation error quotes its input. :func:`scrub_exception`
removes those quotations before an exception's text reaches a log or a span.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

# A process without a configured key still never prints a raw key: it hashes with a random
# key of its own (pseudonyms then only agree within the process).
_key: bytes = secrets.token_bytes(32)
PSEUDONYM_PREFIX = "pk_"

# Span and log field names whose value is a patient_key (the Kafka message key is one too).
PATIENT_KEY_FIELDS: frozenset[str] = frozenset(
    {
        "patient_key",
        "revisit.patient_key",
        "messaging.kafka.message.key",
        "messaging.kafka.message_key",
        "message_key",
    }
)


def configure_pseudonym_key(key: str) -> None:
    """Use ``key`` (from settings) for every pseudonym of this process."""
    global _key
    if key:
        _key = key.encode("utf-8")


def pseudonym(patient_key: str) -> str:
    """A stable, keyed, one-way stand-in for ``patient_key`` (``pk_`` + 20 hex)."""
    if patient_key.startswith(PSEUDONYM_PREFIX):
        return patient_key
    digest = hmac.new(_key, patient_key.encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:20]


def is_patient_key_field(name: str) -> bool:
    return name.lower().replace("-", "_") in PATIENT_KEY_FIELDS or name in PATIENT_KEY_FIELDS


# What drivers and validators quote from the data they refused. Each is replaced whole: the
# kind of failure stays readable, the values go.
_QUOTED = (
    # SQLAlchemy appends the statement's parameters (when hide_parameters is off).
    (re.compile(r"\[parameters: .*?\](?=\s*(?:\(Background|\Z|\n))", re.S), "[parameters hidden]"),
    # PostgreSQL: "DETAIL:  Key (phone)=(+15551234567) already exists."
    (re.compile(r"(Key \([^)]*\))=\((?:[^()]|\([^)]*\))*\)"), r"\1=(…)"),
    # PostgreSQL: "DETAIL:  Failing row contains (…)."
    (re.compile(r"Failing row contains \(.*?\)\.?(?=\s*(?:\n|\Z|\[|\())", re.S), "Failing row …"),
    # pydantic: "input_value='Ana Lopez', input_type=str"
    (re.compile(r"input_value=(?:'[^']*'|\"[^\"]*\"|\{.*?\}|\[.*?\]|[^,\]]*)"), "input_value=…"),
    # asyncpg, before sending: "invalid input for query argument $1: '1979-03-14' (...)"
    (re.compile(r"(invalid input for query argument \$\d+): .*?(?= \(|\n|\Z)"), r"\1: …"),
    # PostgreSQL: 'invalid input syntax for type date: "1984-02-30"'
    (re.compile(r"invalid input syntax for type (\w+): \"[^\"]*\""), r"invalid input for \1"),
)
# Dates of birth and other calendar dates quoted in error text; timestamps of the failure
# itself are in the log record, not in the exception.
_DATE = re.compile(r"(?<!\d)(?:19|20)\d\d-[01]\d-[0-3]\d(?!\d)")


def scrub_exception(text: str) -> str:
    """``text`` (an exception message or traceback) without the values it quoted."""
    from shared.logging import scrub_text  # shared.logging imports this module

    for pattern, replacement in _QUOTED:
        text = pattern.sub(replacement, text)
    text = _DATE.sub("[date]", text)
    return scrub_text(text)
