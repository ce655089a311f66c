"""Pure core of ingest: problems, mapped facts, event identity, and the native-JSON route.

No I/O here. Every route (native JSON, FHIR R4, HL7 v2) maps a source message to ``Fact``s (an
EHR payload for one patient) or refuses it whole with ``Problem``s that name where the message
is wrong, never the offending value. ``envelopes`` turns facts into events whose ids derive from
the source message and the event's content, so a replayed message that maps to the same events
gets the same ids (and every downstream inbox drops them), while a corrected mapping gets new ones.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from services.ingest.mapping.service_lines import ServiceLineTable
from shared.events import TOPIC_OF, Envelope, EventError, new_event
from shared.events.ehr import EhrPayload
from shared.events.envelope import describe_validation_error, payload_class, upcast
from shared.topics import EHR_EVENTS

P = TypeVar("P", bound=EhrPayload)
MAX_EVENTS_PER_SUBMISSION = 1000
EVENT_ID_NAMESPACE = uuid.UUID("6f1c1f2e-3a57-4c55-9a53-5f8f0e3b2a10")


@dataclass(frozen=True)
class Problem:
    """Where a submission is wrong and what kind of wrong (never the offending value).

    ``code`` is an HL7 table 0357 error code when the problem is reported in an HL7 NAK.
    """

    loc: str
    msg: str
    code: str = ""


class Refused(Exception):
    def __init__(self, problems: list[Problem], *, reject: bool = False) -> None:
        super().__init__("; ".join(f"{p.loc}: {p.msg}" for p in problems))
        self.problems = problems
        # True: the sender must not resend as is (HL7 AR); False: fix the content (HL7 AE).
        self.reject = reject


@dataclass(frozen=True)
class Fact:
    """One EHR fact, ready to publish: the payload and the patient it belongs to."""

    patient_id: str
    payload: EhrPayload
    occurred_at: datetime


@dataclass(frozen=True)
class MappingContext:
    """What a mapping may depend on besides the message itself (so replays map the same)."""

    received_at: datetime
    local_zone: ZoneInfo
    service_lines: ServiceLineTable = field(default_factory=ServiceLineTable)
    processing_ids: frozenset[str] = frozenset({"P"})


def build(cls: type[P], loc: str, **fields: Any) -> P:
    """A payload from mapped fields, or a refusal naming the source record and the field."""
    try:
        return cls(**fields)
    except ValidationError as exc:
        raise Refused(
            [
                Problem(loc, f"{where or cls.__name__}: {msg}")
                for where, msg in validation_problems(exc)
            ]
        ) from None


def ehr_event_types() -> set[str]:
    return {name for name, topic in TOPIC_OF.items() if topic == EHR_EVENTS}


def dedupe_key(raw: bytes, idempotency_key: str | None) -> str:
    """The source-message identity: the caller's Idempotency-Key, else the body's hash."""
    if idempotency_key:
        return f"key:{idempotency_key.strip()}"
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"


def _content_digest(event_type: str, patient_key: str, occurred_at: datetime, body: str) -> str:
    text = f"{event_type}|{patient_key}|{occurred_at.isoformat()}|{body}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def envelopes(
    facts: Iterable[Fact], *, clinic_id: str, source_key: str, recorded_at: datetime
) -> list[Envelope[Any]]:
    """Wrap facts in envelopes with ids derived from (clinic, source message, content)."""
    seen: Counter[str] = Counter()
    out: list[Envelope[Any]] = []
    for fact in facts:
        patient_key = f"{clinic_id}:{fact.patient_id}"
        body = fact.payload.model_dump_json()
        digest = _content_digest(fact.payload.event_type, patient_key, fact.occurred_at, body)
        seen[digest] += 1
        event_id = uuid.uuid5(
            EVENT_ID_NAMESPACE, f"{clinic_id}|{source_key}|{digest}|{seen[digest]}"
        )
        out.append(
            new_event(
                fact.payload,
                clinic_id=clinic_id,
                patient_key=patient_key,
                occurred_at=fact.occurred_at,
                recorded_at=recorded_at,
                event_id=event_id,
            )
        )
    return out


# --- the native JSON route ---------------------------------------------------------------------


def parse_native(doc: Any, *, clinic_id: str) -> list[Fact]:
    """Turn ``{"events": [...]}`` (or one event object, or a list) into facts, all or nothing."""
    items, prefix = _items(doc)
    if not items:
        raise Refused([Problem(prefix.rstrip(".") or "(root)", "no events given")])
    if len(items) > MAX_EVENTS_PER_SUBMISSION:
        raise Refused([Problem(prefix.rstrip("."), f"at most {MAX_EVENTS_PER_SUBMISSION} events")])
    allowed = ehr_event_types()
    problems: list[Problem] = []
    facts: list[Fact] = []
    for index, item in enumerate(items):
        where = f"{prefix}[{index}]" if prefix else ""
        try:
            facts.append(_one(item, where, allowed, clinic_id))
        except Refused as exc:
            problems.extend(exc.problems)
    if problems:
        raise Refused(problems[:50])
    return facts


def _items(doc: Any) -> tuple[list[Any], str]:
    if isinstance(doc, dict) and "events" in doc:
        if not isinstance(doc["events"], list):
            raise Refused([Problem("events", "must be a list of event objects")])
        return doc["events"], "events"
    if isinstance(doc, dict):
        return [doc], ""
    if isinstance(doc, list):
        return doc, "(root)"
    raise Refused([Problem("(root)", 'expected {"events": [...]} or one event object')])


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _one(item: Any, where: str, allowed: set[str], clinic_id: str) -> Fact:
    if not isinstance(item, dict):
        raise Refused([Problem(where or "(root)", "an event must be an object")])
    event_type = item.get("type")
    if event_type not in allowed:
        raise Refused(
            [
                Problem(
                    _at(where, "type"),
                    f"must be one of the EHR events: {', '.join(sorted(allowed))}",
                )
            ]
        )
    if item.get("clinic_id", clinic_id) != clinic_id:
        raise Refused([Problem(_at(where, "clinic_id"), "does not match the credential's clinic")])
    patient_id = item.get("patient_id")
    if not isinstance(patient_id, str) or not patient_id.strip() or ":" in patient_id:
        raise Refused([Problem(_at(where, "patient_id"), "required: the patient's id in the EHR")])
    body = item.get("payload")
    if not isinstance(body, dict):
        raise Refused([Problem(_at(where, "payload"), "required: an object")])
    version = item.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise Refused([Problem(_at(where, "version"), "must be a positive integer")])
    try:
        version, body = upcast(event_type, version, body)
        payload = payload_class(event_type, version).model_validate(body)
    except ValidationError as exc:
        raise Refused(
            [
                Problem(_at(where, "payload." + loc) if loc else _at(where, "payload"), msg)
                for loc, msg in validation_problems(exc)
            ]
        ) from None
    except EventError as exc:
        raise Refused([Problem(_at(where, "version"), str(exc) or "invalid")]) from None
    if not isinstance(payload, EhrPayload):  # every type on ehr.events is one; guards the types
        raise Refused([Problem(_at(where, "type"), "is not an EHR event")])
    occurred = item.get("occurred_at")
    try:
        occurred_at = (
            datetime.fromisoformat(str(occurred)) if occurred else payload.source.source_updated_at
        )
        # Validated here so that a bad value is refused, not a crash while wrapping it later.
        new_event(
            payload,
            clinic_id=clinic_id,
            patient_key=f"{clinic_id}:{patient_id.strip()}",
            occurred_at=occurred_at,
        )
    except (ValueError, ValidationError) as exc:
        detail = describe_validation_error(exc) if isinstance(exc, ValidationError) else ""
        raise Refused(
            [Problem(_at(where, "occurred_at"), detail or "not an ISO 8601 date-time with offset")]
        ) from None
    return Fact(patient_id.strip(), payload, occurred_at)


def validation_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(dotted location, message) of each error; pydantic's messages never carry the input."""
    out = []
    for err in exc.errors(include_input=False, include_url=False)[:20]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        out.append((loc, err["msg"]))
    return out
