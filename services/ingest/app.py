"""Composition root of ingest: settings -> runtime -> FastAPI app. Nothing runs at import."""

from __future__ import annotations

from fastapi import FastAPI

from services.ingest import api, keys
from services.ingest.repository import SCHEMA
from shared.config import RevisitSettings
from shared.runtime import ServiceSpec, build_app

SPEC = ServiceSpec(
    name="ingest",
    schema=SCHEMA,
    routers=(api.router,),
    api_key_lookup=lambda rt: keys.api_key_lookup(rt.sessions),
    title="Revisit ingest",
    description="Accepts what EHRs send and publishes clean, de-duplicated events.",
)


def create_app(settings: RevisitSettings) -> FastAPI:
    return build_app(SPEC, settings)
