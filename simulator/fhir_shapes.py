"""Shapes every simulated FHIR record shares: times in the clinic's zone, meta, references,
service codes, and the transaction Bundles the EHR pushes.

Services are coded with the practice's own key first and the CPT second: a CPT such as 99213
says "office visit", not what the patient came for, so the key is what tells ingest the line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from simulator.model import Clinic, Service

EHR = "https://ehr.example.org/fhir"
PRACTICE_CODES = f"{EHR}/CodeSystem/practice-services"
CPT = "http://www.ama-assn.org/go/cpt"
TZ_CODE = "http://hl7.org/fhir/StructureDefinition/tz-code"
COMMUNICATION_CONSENT = "urn:revisit:communication-consent"
CANCELLATION = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason"
UCUM = "http://unitsofmeasure.org"
TERMINOLOGY = "http://terminology.hl7.org/CodeSystem"
Resource = dict[str, Any]


def instant(at: datetime, clinic: Clinic) -> str:
    """An instant in the clinic's own zone with its offset, as EHRs write them."""
    zone = ZoneInfo(clinic.time_zone)
    aware = at if at.tzinfo is not None else at.replace(tzinfo=zone)
    return aware.astimezone(zone).isoformat(timespec="seconds")


def meta(version: int | str, updated: datetime, clinic: Clinic) -> dict[str, str]:
    return {"versionId": str(version), "lastUpdated": instant(updated, clinic)}


def ref(kind: str, rid: str) -> dict[str, str]:
    return {"reference": f"{kind}/{rid}"}


def find_service(clinic: Clinic, code: str) -> Service | None:
    return next((s for s in clinic.catalogue if s.code == code), None)


def service_concept(clinic: Clinic, code: str, *also: str) -> dict[str, Any]:
    """The practice's key (what the front desk chose), its CPT, then any extra local codes."""
    service = find_service(clinic, code)
    coding: list[dict[str, Any]] = [{"system": PRACTICE_CODES, "code": code, "userSelected": True}]
    if service is not None:
        coding[0]["display"] = service.name
        coding.append({"system": CPT, "code": service.cpt})
    coding += [{"system": PRACTICE_CODES, "code": extra} for extra in also]
    return {"coding": coding, "text": service.name if service is not None else code}


def days(count: int) -> dict[str, Any]:
    return {"value": count, "unit": "days", "system": UCUM, "code": "d"}


def transaction(resources: Iterable[Resource]) -> Resource:
    """A transaction Bundle that PUTs each resource under its own id.

    The Bundle's id is a digest of its entries, so the same records sent again are the same
    Bundle (a duplicate for ingest) and different records never reuse an id.
    """
    entries = [
        {
            "fullUrl": f"{EHR}/{r['resourceType']}/{r['id']}",
            "resource": r,
            "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
        }
        for r in resources
    ]
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:40]
    return {"resourceType": "Bundle", "id": f"b-{digest}", "type": "transaction", "entry": entries}


def combined(bundles: Sequence[Resource]) -> Resource:
    """Several records' Bundles as one (the integration engine batches its pushes)."""
    if len(bundles) == 1:
        return bundles[0]
    return transaction(e["resource"] for b in bundles for e in b["entry"])
