"""Composition root of ingest: settings -> runtime -> FastAPI app (+ MLLP). Nothing runs at import.

``create_app(settings)`` reads ingest's own settings (MLLP, retention, HL7 defaults) from the
environment unless they are given. The lifespan starts, after the shared runtime: the MLLP
listener (with its batcher) and the retention sweep; it stops them before the runtime stops.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from services.ingest import retention
from services.ingest.api import ROUTERS
from services.ingest.api.common import validation_error
from services.ingest.ingestion import Ingestion, ingestion_of
from services.ingest.mllp import MllpListener
from services.ingest.repository import SCHEMA
from services.ingest.settings import IngestSettings
from services.ingest.submissions import MAX_BODY_BYTES
from shared.config import RevisitSettings
from shared.runtime import Runtime, ServiceSpec, build_app


def build_spec(ingest: IngestSettings) -> ServiceSpec:
    async def on_start(runtime: Runtime) -> None:
        ingestion = Ingestion.build(runtime, ingest)
        runtime.extras["ingest"] = ingestion
        ingestion.batcher.start()
        runtime.loops.add(
            "retention", lambda stop: retention.sweep_forever(runtime, ingest, stop), required=False
        )
        if ingest.mllp_enabled:
            listener = MllpListener(runtime, ingestion)
            await listener.start()
            ingestion.extras["mllp"] = listener
            runtime.extras["mllp_port"] = listener.port

    async def on_stop(runtime: Runtime) -> None:
        ingestion = ingestion_of(runtime)
        listener = ingestion.extras.get("mllp")
        if isinstance(listener, MllpListener):
            await listener.stop()
        await ingestion.batcher.stop()

    return ServiceSpec(
        name="ingest",
        schema=SCHEMA,
        routers=ROUTERS,
        on_start=on_start,
        on_stop=on_stop,
        # The authenticator is built after on_start: it shares the ingestion's key cache.
        api_key_lookup=lambda rt: ingestion_of(rt).keys.row,
        # An EHR's Bundle or HL7 batch is larger than an ops request; ingest's own reader
        # answers with the same limit in the submission's error shape.
        body_limits={path: MAX_BODY_BYTES for path in ("/events", "/fhir/r4", "/hl7v2")},
        title="Revisit ingest",
        description=(
            "Accepts what EHRs send (native JSON, FHIR R4, HL7 v2 over HTTP and MLLP) and "
            "publishes clean, de-duplicated events on ehr.events.v1."
        ),
    )


def create_app(settings: RevisitSettings, ingest: IngestSettings | None = None) -> FastAPI:
    ingest = ingest or IngestSettings()
    ingest.refuse_untrusted_clinic_listener(settings.revisit_profile)
    app = build_app(build_spec(ingest), settings)
    app.add_exception_handler(RequestValidationError, validation_error)
    return app
