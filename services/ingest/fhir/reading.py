"""A FHIR R4 JSON document (one resource or a Bundle) -> validated entries, identity, fingerprint.

Resources are validated with ``fhir.resources.R4B``: the package's default models are R5, and
R4B (4.3) is the release whose resources read R4 (4.0.1) JSON unchanged for every type we map
(checked against the official R4 examples, Synthea and FHIR-Converter output). Only the types
Revisit maps, and those it reads beside them (charges, roles, procedures), are validated; other
resources in a Bundle are carried through untouched, so an unrelated malformed Observation never
blocks a patient's appointment.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from services.ingest.domain import Problem, Refused

BUNDLE_TYPES = ("transaction", "batch", "collection", "message")
MAPPED = frozenset(
    {
        "Patient",
        "Appointment",
        "Encounter",
        "CarePlan",
        "ServiceRequest",
        "Communication",
        "Consent",
        "QuestionnaireResponse",
    }
)
READ_BESIDE = frozenset({"ChargeItem", "Claim", "Procedure", "PractitionerRole"})
MAX_ENTRIES = 5000


@dataclass(frozen=True)
class Entry:
    loc: str  # "Appointment" alone, "Bundle.entry[3].Appointment" inside a Bundle
    resource_type: str
    resource: Any  # a validated model for MAPPED / READ_BESIDE types, else the raw dict
    full_url: str | None = None

    @property
    def id(self) -> str | None:
        value = (
            getattr(self.resource, "id", None)
            if not isinstance(self.resource, dict)
            else (self.resource.get("id"))
        )
        return str(value) if value else None


@dataclass(frozen=True)
class FhirDocument:
    entries: tuple[Entry, ...]
    timestamp: datetime | None  # Bundle.timestamp, else Bundle.meta.lastUpdated
    source_key: str
    fingerprint: str


def fhir_path(prefix: str, loc: tuple[Any, ...]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _problems(prefix: str, exc: ValidationError) -> list[Problem]:
    return [
        Problem(fhir_path(prefix, tuple(err.get("loc", ()))), err["msg"])
        for err in exc.errors(include_input=False, include_url=False)[:20]
    ]


def fingerprint(doc: Any) -> str:
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def read_document(doc: Any, *, path: tuple[str, str] | None = None) -> FhirDocument:
    """Validate ``doc``; ``path`` is (type, id) from ``PUT /fhir/r4/{type}/{id}``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        raise Refused([Problem("resourceType", "required: a FHIR resource or Bundle object")])
    kind = doc["resourceType"]
    print_ = fingerprint(doc)
    if path is not None:
        doc = _matching_path(doc, path)
    if kind != "Bundle":
        entry = _entry(doc, kind, kind, None)
        return FhirDocument((entry,), None, _resource_key(doc, print_), print_)
    if path is not None:
        raise Refused([Problem("Bundle", "a Bundle is posted to /fhir/r4, not put by id")])
    return _bundle(doc, print_)


def _matching_path(doc: dict[str, Any], path: tuple[str, str]) -> dict[str, Any]:
    kind, rid = path
    if doc["resourceType"] != kind:
        raise Refused([Problem("resourceType", "does not match the resource type in the URL")])
    if doc.get("id") not in (None, rid):
        raise Refused([Problem(f"{kind}.id", "does not match the id in the URL")])
    return {**doc, "id": rid}


def _resource_key(doc: dict[str, Any], print_: str) -> str:
    kind, rid = doc["resourceType"], doc.get("id")
    version = (
        (doc.get("meta") or {}).get("versionId") if isinstance(doc.get("meta"), dict) else None
    )
    if rid and version:
        return f"fhir:{kind}/{rid}/_history/{version}"
    return f"fhir:{kind}/{rid}@{print_}" if rid else print_


def _entry(resource: Any, kind: str, loc: str, full_url: str | None) -> Entry:
    if kind not in MAPPED and kind not in READ_BESIDE:
        try:
            get_fhir_model_class(kind)
        except (KeyError, ValueError):
            raise Refused([Problem(f"{loc}.resourceType", "not a FHIR R4 resource type")]) from None
        return Entry(loc, kind, resource, full_url)
    try:
        model = get_fhir_model_class(kind).model_validate(resource)
    except ValidationError as exc:
        raise Refused(_problems(loc, exc)) from None
    if kind in MAPPED and not getattr(model, "id", None):
        raise Refused(
            [Problem(f"{loc}.id", "required: the EHR's id for this record (urn:uuid is temporary)")]
        )
    return Entry(loc, kind, model, full_url)


def _bundle(doc: dict[str, Any], print_: str) -> FhirDocument:
    raw_entries = doc.get("entry") or []
    if not isinstance(raw_entries, list):
        raise Refused([Problem("Bundle.entry", "must be a list")])
    if len(raw_entries) > MAX_ENTRIES:
        raise Refused([Problem("Bundle.entry", f"at most {MAX_ENTRIES} entries")])
    skeleton = {
        **doc,
        "entry": [
            {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
            for e in raw_entries
        ],
    }
    try:
        bundle = Bundle.model_validate(skeleton)
    except ValidationError as exc:
        raise Refused(_problems("Bundle", exc)) from None
    if bundle.type not in BUNDLE_TYPES:
        raise Refused(
            [Problem("Bundle.type", f"{bundle.type} is not taken; send {', '.join(BUNDLE_TYPES)}")]
        )
    problems: list[Problem] = []
    entries: list[Entry] = []
    for index, (raw, parsed) in enumerate(zip(raw_entries, bundle.entry or [], strict=True)):
        where = f"Bundle.entry[{index}]"
        try:
            entries.append(_bundle_entry(raw, parsed, where))
        except Refused as exc:
            problems.extend(exc.problems)
    if problems:
        raise Refused(problems[:50])
    stamp = bundle.timestamp or (bundle.meta.lastUpdated if bundle.meta else None)
    return FhirDocument(tuple(entries), stamp, _bundle_key(bundle, print_), print_)


def _bundle_entry(raw: dict[str, Any], parsed: Any, where: str) -> Entry:
    request = parsed.request
    if request is not None:
        method = (request.method or "").upper()
        if method not in {"POST", "PUT"}:
            raise Refused(
                [
                    Problem(
                        f"{where}.request.method",
                        f"{method} is not taken: Revisit takes records the EHR pushes (POST, PUT);"
                        " a removal arrives as a status (e.g. entered-in-error)",
                    )
                ]
            )
        url = request.url or ""
        if "?" in url:
            raise Refused([Problem(f"{where}.request.url", "a conditional URL is not taken")])
        if "$" in url:
            raise Refused([Problem(f"{where}.request.url", "an operation is not taken")])
    resource = raw.get("resource")
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise Refused([Problem(f"{where}.resource", "required: the record this entry carries")])
    kind = resource["resourceType"]
    entry = _entry(resource, kind, f"{where}.{kind}", parsed.fullUrl)
    if request is not None and request.method.upper() == "PUT" and entry.id:
        expected = f"{kind}/{entry.id}"
        if request.url and not request.url.rstrip("/").endswith(expected):
            raise Refused(
                [Problem(f"{where}.request.url", "does not name the resource's type and id")]
            )
    return entry


def _bundle_key(bundle: Bundle, print_: str) -> str:
    version = bundle.meta.versionId if bundle.meta else None
    if bundle.id and version:
        return f"fhir:Bundle/{bundle.id}/_history/{version}"
    if bundle.id and bundle.type == "message":
        return f"fhir:Bundle/{bundle.id}"  # a message Bundle's id identifies the message
    return print_
