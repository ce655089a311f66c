"""What mapping one FHIR resource may look up in its document: references, times, codes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from services.ingest.domain import MappingContext, Problem, Refused
from services.ingest.fhir.reading import Entry, FhirDocument
from services.ingest.mapping.service_lines import fhir_code_system
from shared.events.common import CodeSystem, EhrSource, SourceSystem

_RELATIVE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


@dataclass
class DocumentContext:
    document: FhirDocument
    ctx: MappingContext
    by_url: dict[str, Entry] = field(default_factory=dict)
    by_ref: dict[str, Entry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entry in self.document.entries:
            if entry.full_url:
                self.by_url[entry.full_url] = entry
            if entry.id:
                self.by_ref[f"{entry.resource_type}/{entry.id}"] = entry

    def of_type(self, kind: str) -> list[Entry]:
        return [e for e in self.document.entries if e.resource_type == kind]

    def target(self, reference: Any) -> tuple[str | None, str | None]:
        """(type, id) a Reference points at; (None, None) for contained or unreadable ones."""
        if reference is None:
            return None, None
        ref = getattr(reference, "reference", None) or ""
        if ref.startswith("#"):
            return None, None
        if ref in self.by_url:
            entry = self.by_url[ref]
            return entry.resource_type, entry.id
        match = _RELATIVE.search(ref)
        if match:
            return match.group(1), match.group(2)
        return getattr(reference, "type", None), None

    def id_of(self, reference: Any, *kinds: str) -> str | None:
        kind, rid = self.target(reference)
        return rid if kind in kinds else None

    def entry(self, reference: Any) -> Entry | None:
        kind, rid = self.target(reference)
        return self.by_ref.get(f"{kind}/{rid}") if kind and rid else None

    def patient(self, reference: Any, loc: str) -> str:
        kind, rid = self.target(reference)
        if kind != "Patient" or not rid:
            raise Refused([Problem(loc, "no Patient reference")])
        return rid

    def practitioner(self, reference: Any) -> str | None:
        """A Practitioner's id, following a PractitionerRole in the document to its person."""
        kind, rid = self.target(reference)
        if kind == "PractitionerRole":
            role = self.by_ref.get(f"PractitionerRole/{rid}")
            if role is not None and role.resource.practitioner is not None:
                return self.id_of(role.resource.practitioner, "Practitioner") or rid
        return rid if kind in {"Practitioner", "PractitionerRole"} else None

    def source(self, resource: Any) -> EhrSource:
        """Record id and the source's own version and time (meta, else the Bundle's, else ours)."""
        meta = resource.meta
        updated = meta.lastUpdated if meta is not None else None
        return EhrSource(
            system=SourceSystem.fhir,
            record_id=resource.id,
            source_version=(meta.versionId if meta is not None else None) or None,
            source_updated_at=self.instant(updated)
            or self.instant(self.document.timestamp)
            or self.ctx.received_at,
        )

    def instant(self, value: Any) -> datetime | None:
        """A FHIR date or dateTime as an aware datetime (a date is midnight in the local zone)."""
        if value is None:
            return None
        if isinstance(value, datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=self.ctx.local_zone)
            return aware.astimezone(UTC)
        if isinstance(value, date):
            return datetime.combine(value, time(), self.ctx.local_zone).astimezone(UTC)
        return None

    def day(self, value: Any) -> date | None:
        if isinstance(value, datetime):
            return value.date()
        return value if isinstance(value, date) else None


def codings(*concepts: Any) -> list[tuple[CodeSystem | None, str]]:
    """(code system, code) of every Coding of the given CodeableConcepts (or lists of them)."""
    out: list[tuple[CodeSystem | None, str]] = []
    for concept in _flatten(concepts):
        for coding in getattr(concept, "coding", None) or []:
            if coding.code:
                out.append((fhir_code_system(coding.system), coding.code))
    return out


def codes(*concepts: Any) -> list[str]:
    return [code for _system, code in codings(*concepts)]


def _flatten(items: Iterable[Any]) -> Iterable[Any]:
    for item in items:
        if isinstance(item, list | tuple):
            yield from _flatten(item)
        elif item is not None:
            yield item


def text_of(concept: Any, limit: int = 500) -> str | None:
    text = (getattr(concept, "text", None) or "").strip()
    return text[:limit] or None
