"""What an EHR's FHIR server says it can do, read from its CapabilityStatement (``/metadata``).

Revisit books only where the server declares ``create`` on Appointment; without it a chosen
time becomes a staff task. Conditional create (``If-None-Exist``) is what makes a booking safe
to repeat, so a server that does not declare it is noted (the adapter still sends the header and
checks for an existing appointment with Revisit's identifier first).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


class CapabilityError(ValueError):
    """The document is not a usable R4 CapabilityStatement (the message names the field)."""


class Capabilities(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    fhir_version: str
    software: str | None = None
    patient_search: bool = False
    patient_identifier_search: bool = False
    schedule_search: bool = False
    slot_search: bool = False
    slot_read: bool = False
    appointment_create: bool = False
    appointment_conditional_create: bool = False
    appointment_book_operation: bool = False  # an Appointment $book operation is declared
    communication_create: bool = False
    token_url: str | None = None  # from the security extension, if the server gives one
    notes: list[str] = Field(default_factory=list)


def _resources(statement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rests = statement.get("rest")
    if not isinstance(rests, list):
        raise CapabilityError("rest: missing; the server declares no REST interface")
    server = next((r for r in rests if isinstance(r, dict) and r.get("mode") == "server"), None)
    if server is None:
        raise CapabilityError("rest: no entry with mode server")
    out: dict[str, dict[str, Any]] = {}
    for resource in server.get("resource") or []:
        if isinstance(resource, dict) and isinstance(resource.get("type"), str):
            out[resource["type"]] = resource
    return out


def _interactions(resource: dict[str, Any] | None) -> set[str]:
    if not resource:
        return set()
    return {
        str(i["code"])
        for i in resource.get("interaction") or []
        if isinstance(i, dict) and isinstance(i.get("code"), str)
    }


def _search_params(resource: dict[str, Any] | None) -> set[str]:
    if not resource:
        return set()
    return {
        str(p["name"])
        for p in resource.get("searchParam") or []
        if isinstance(p, dict) and isinstance(p.get("name"), str)
    }


def _token_url(statement: dict[str, Any]) -> str | None:
    for rest in statement.get("rest") or []:
        security = rest.get("security") if isinstance(rest, dict) else None
        for extension in (security or {}).get("extension") or []:
            if not isinstance(extension, dict) or extension.get("url") != OAUTH_URIS:
                continue
            for inner in extension.get("extension") or []:
                if isinstance(inner, dict) and inner.get("url") == "token":
                    value = inner.get("valueUri")
                    if isinstance(value, str) and value.startswith("http"):
                        return value
    return None


def read_capabilities(statement: Any) -> Capabilities:
    """The capabilities Revisit relies on, or a CapabilityError saying what is wrong."""
    if not isinstance(statement, dict) or statement.get("resourceType") != "CapabilityStatement":
        raise CapabilityError("resourceType: not a CapabilityStatement")
    version = str(statement.get("fhirVersion") or "")
    if not version.startswith("4."):
        raise CapabilityError("fhirVersion: Revisit speaks FHIR R4 (4.0.x)")
    resources = _resources(statement)
    patient, slot = resources.get("Patient"), resources.get("Slot")
    appointment, communication = resources.get("Appointment"), resources.get("Communication")
    appointment_ops = {
        str(op.get("name", "")).lstrip("$")
        for op in (appointment or {}).get("operation") or []
        if isinstance(op, dict)
    }
    software = statement.get("software")
    notes = []
    create = "create" in _interactions(appointment)
    conditional = bool((appointment or {}).get("conditionalCreate"))
    if create and not conditional:
        notes.append("Appointment: conditional create not declared (If-None-Exist)")
    if not create:
        notes.append("Appointment: create not declared: bookings become staff tasks")
    return Capabilities(
        fhir_version=version,
        software=software.get("name") if isinstance(software, dict) else None,
        patient_search="search-type" in _interactions(patient),
        patient_identifier_search="identifier" in _search_params(patient)
        or (bool(patient) and not _search_params(patient)),
        schedule_search="search-type" in _interactions(resources.get("Schedule")),
        slot_search="search-type" in _interactions(slot),
        slot_read="read" in _interactions(slot),
        appointment_create=create,
        appointment_conditional_create=conditional,
        appointment_book_operation="book" in appointment_ops,
        communication_create="create" in _interactions(communication),
        token_url=_token_url(statement),
        notes=notes,
    )
