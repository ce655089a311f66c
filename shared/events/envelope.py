"""The one envelope every event travels in, and the registry of typed payloads.

Every payload is a frozen pydantic model registered under its event ``type`` and an integer
``version``. An old version is never edited: a new version is registered and an upcaster turns
the old shape into the new one, so a consumer only ever sees the current version.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.ids import ClinicId, PatientKey


class EventError(ValueError):
    """A message that cannot become a typed event; the text says exactly why."""


class UnknownEventType(EventError):
    pass


class UnknownEventVersion(EventError):
    pass


class Payload(BaseModel):
    """Base class of every event payload: frozen, no unknown fields, registered by decorator."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    event_version: ClassVar[int]


P = TypeVar("P", bound=Payload)
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_payloads: dict[tuple[str, int], type[Payload]] = {}
_current: dict[str, int] = {}
_upcasters: dict[tuple[str, int], Upcaster] = {}


def register(event_type: str, version: int = 1) -> Callable[[type[P]], type[P]]:
    """Class decorator: make ``cls`` the payload of ``event_type`` at ``version``."""

    def wrap(cls: type[P]) -> type[P]:
        key = (event_type, version)
        if key in _payloads and _payloads[key] is not cls:
            raise RuntimeError(f"{event_type} v{version} is registered twice")
        cls.event_type = event_type
        cls.event_version = version
        _payloads[key] = cls
        _current[event_type] = max(version, _current.get(event_type, 0))
        return cls

    return wrap


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register a function turning a ``from_version`` payload dict into ``from_version + 1``."""

    def wrap(fn: Upcaster) -> Upcaster:
        _upcasters[(event_type, from_version)] = fn
        return fn

    return wrap


def payload_class(event_type: str, version: int | None = None) -> type[Payload]:
    if event_type not in _current:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    version = _current[event_type] if version is None else version
    try:
        return _payloads[(event_type, version)]
    except KeyError:
        raise UnknownEventVersion(
            f"{event_type} has no version {version}; known: {known_versions(event_type)}"
        ) from None


def known_versions(event_type: str) -> list[int]:
    return sorted(v for (t, v) in _payloads if t == event_type)


def registered_types() -> dict[str, int]:
    """Every registered event type with its current version."""
    return dict(sorted(_current.items()))


def upcast(event_type: str, version: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Walk ``body`` from ``version`` up to the current version through the upcasters."""
    if event_type not in _current:
        raise UnknownEventType(f"unknown event type {event_type!r}")
    current = _current[event_type]
    if version > current:
        raise UnknownEventVersion(
            f"{event_type} v{version} is newer than this service understands (v{current}); "
            "deploy the newer schema before producing it"
        )
    while version < current:
        step = _upcasters.get((event_type, version))
        if step is None:
            raise UnknownEventVersion(
                f"{event_type} v{version} cannot be read: no upcaster to v{version + 1}"
            )
        body = step(body)
        version += 1
    return version, body


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel, Generic[P]):
    """What goes on the wire. ``patient_key`` is ``<clinic_id>:<patient id>`` and the Kafka key."""

    model_config = ConfigDict(frozen=True)

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int
    occurred_at: datetime
    recorded_at: datetime = Field(default_factory=_utcnow)
    clinic_id: ClinicId
    patient_key: PatientKey
    correlation_id: uuid.UUID | None = None
    causation_id: uuid.UUID | None = None
    payload: P

    @field_validator("occurred_at", "recorded_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamps must carry a time zone offset")
        return value.astimezone(UTC)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    def caused(self, payload: Payload, *, occurred_at: datetime | None = None) -> Envelope[Any]:
        """A new event caused by this one: same patient and correlation, causation = this."""
        return new_event(
            payload,
            clinic_id=self.clinic_id,
            patient_key=self.patient_key,
            occurred_at=occurred_at or self.occurred_at,
            correlation_id=self.correlation_id or self.event_id,
            causation_id=self.event_id,
        )


def new_event(
    payload: Payload,
    *,
    clinic_id: str,
    patient_key: str,
    occurred_at: datetime,
    recorded_at: datetime | None = None,
    correlation_id: uuid.UUID | None = None,
    causation_id: uuid.UUID | None = None,
    event_id: uuid.UUID | None = None,
) -> Envelope[Any]:
    """Wrap a registered payload in an envelope (the only way services build events)."""
    if not patient_key.startswith(f"{clinic_id}:"):
        raise EventError("patient_key must start with the event's clinic_id")
    eid = event_id or uuid.uuid4()
    return Envelope[Any](
        event_id=eid,
        type=payload.event_type,
        version=payload.event_version,
        occurred_at=occurred_at,
        recorded_at=recorded_at or _utcnow(),
        clinic_id=clinic_id,
        patient_key=patient_key,
        correlation_id=correlation_id or eid,
        causation_id=causation_id,
        payload=payload,
    )


def _location(err: Mapping[str, Any]) -> str:
    return ".".join(str(p) for p in err.get("loc", ())) or "(root)"


def describe_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """A precise, PHI-free summary: where each problem is and what kind it is (never the value)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:10]:
        where = _location(err)
        parts.append(f"{prefix}{where}: {err['msg']}")
    return "; ".join(parts)


def parse_event(raw: bytes | str | dict[str, Any]) -> Envelope[Any]:
    """Bytes off the wire -> a typed, current-version envelope, or an EventError saying why."""
    if isinstance(raw, dict):
        doc = raw
    else:
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EventError(
                f"not JSON: {exc.__class__.__name__} at position "
                f"{getattr(exc, 'pos', getattr(exc, 'start', '?'))}"
            ) from None
    if not isinstance(doc, dict):
        raise EventError("an event must be a JSON object")
    event_type, version = doc.get("type"), doc.get("version")
    if not isinstance(event_type, str):
        raise EventError("type: missing or not a string")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise EventError("version: missing or not a positive integer")
    body = doc.get("payload")
    if not isinstance(body, dict):
        raise EventError("payload: missing or not an object")
    version, body = upcast(event_type, version, body)
    cls = payload_class(event_type, version)
    try:
        payload = cls.model_validate(body)
        return Envelope[Any].model_validate({**doc, "version": version, "payload": payload})
    except ValidationError as exc:
        raise EventError(f"{event_type} v{version}: {describe_validation_error(exc)}") from None
