"""Ingest's HTTP API: native JSON, FHIR R4, HL7 v2 over HTTP, and the admin routes."""

from __future__ import annotations

from services.ingest.api import admin, fhir, hl7v2, native

ROUTERS = (native.router, fhir.router, hl7v2.router, admin.router)
