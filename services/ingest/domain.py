"""Pure rules of ingest: a native-JSON submission -> validated, de-duplicable EHR events.

No I/O here. The shell (handlers.py) stores the source message and stages what this returns.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.events import TOPIC_OF, Envelope, EventError, new_event
from shared.events.ehr import EhrPayload
from shared.events.envelope import describe_validation_error, payload_class, upcast
from shared.topics import EHR_EVENTS

MAX_EVENTS_PER_SUBMISSION = 1000
# Event ids are derived from the source message, so a replayed submission yields the same ids
# and every downstream inbox drops it even if ingest's own de-duplication were bypassed.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c1f2e-3a57-4c55-9a53-5f8f0e3b2a10")


@dataclass(frozen=True)
class Problem:
    """Where a submission is wrong and what kind of wrong (never the offending value)."""

    loc: str
    msg: str


class Refused(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.loc}: {p.msg}" for p in problems))
        self.problems = problems


def ehr_event_types() -> set[str]:
    return {name for name, topic in TOPIC_OF.items() if topic == EHR_EVENTS}


def dedupe_key(raw: bytes, idempotency_key: str | None) -> str:
    """The source-message identity: the caller's Idempotency-Key, else the body's hash."""
    if idempotency_key:
        return f"key:{idempotency_key.strip()}"
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"


def event_id_for(clinic_id: str, source_key: str, index: int) -> uuid.UUID:
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{clinic_id}|{source_key}|{index}")


def parse_native(
    doc: Any, *, clinic_id: str, source_key: str, received_at: datetime
) -> list[Envelope[Any]]:
    """Turn ``{"events": [...]}`` (or one event object) into envelopes, all or nothing."""
    items, prefix = _items(doc)
    if not items:
        raise Refused([Problem(prefix.rstrip(".") or "(root)", "no events given")])
    if len(items) > MAX_EVENTS_PER_SUBMISSION:
        raise Refused([Problem(prefix.rstrip("."), f"at most {MAX_EVENTS_PER_SUBMISSION} events")])
    allowed = ehr_event_types()
    problems: list[Problem] = []
    events: list[Envelope[Any]] = []
    for index, item in enumerate(items):
        where = f"{prefix}[{index}]" if prefix else ""
        try:
            events.append(
                _one(
                    item,
                    where,
                    allowed,
                    clinic_id,
                    event_id_for(clinic_id, source_key, index),
                    received_at,
                )
            )
        except Refused as exc:
            problems.extend(exc.problems)
    if problems:
        raise Refused(problems[:50])
    return events


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


def _at(where: str, field: str) -> str:
    return f"{where}.{field}" if where else field


def _one(
    item: Any,
    where: str,
    allowed: set[str],
    clinic_id: str,
    event_id: uuid.UUID,
    received_at: datetime,
) -> Envelope[Any]:
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
    given_clinic = item.get("clinic_id", clinic_id)
    if given_clinic != clinic_id:
        raise Refused([Problem(_at(where, "clinic_id"), "does not match the credential's clinic")])
    patient_id = item.get("patient_id")
    if not isinstance(patient_id, str) or not patient_id.strip() or ":" in patient_id:
        raise Refused([Problem(_at(where, "patient_id"), "required: the patient's id in the EHR")])
    version = item.get("version", 1)
    body = item.get("payload")
    if not isinstance(body, dict):
        raise Refused([Problem(_at(where, "payload"), "required: an object")])
    try:
        version, body = upcast(event_type, version, body)
        payload = payload_class(event_type, version).model_validate(body)
    except ValidationError as exc:
        raise Refused(
            [
                Problem(_at(where, "payload." + loc) if loc else _at(where, "payload"), msg)
                for loc, msg in _split(exc)
            ]
        ) from None
    except EventError as exc:
        raise Refused([Problem(_at(where, "version"), str(exc))]) from None
    if not isinstance(payload, EhrPayload):  # every type on ehr.events is one; guards the types
        raise Refused([Problem(_at(where, "type"), "is not an EHR event")])
    occurred_at = item.get("occurred_at") or payload.source.source_updated_at.isoformat()
    try:
        return new_event(
            payload,
            clinic_id=clinic_id,
            patient_key=f"{clinic_id}:{patient_id.strip()}",
            occurred_at=datetime.fromisoformat(str(occurred_at)),
            recorded_at=received_at,
            event_id=event_id,
        )
    except (ValueError, ValidationError) as exc:
        detail = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
        raise Refused([Problem(_at(where, "occurred_at"), detail or "invalid")]) from None


def _split(exc: ValidationError) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors(include_input=False, include_url=False)[:20]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        out.append((loc, err["msg"]))
    return out
