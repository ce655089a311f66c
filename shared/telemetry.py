"""OpenTelemetry tracing: one trace per patient event, carried across services in Kafka headers.

Only W3C ``traceparent``/``tracestate`` travel between services. Baggage is deliberately not
propagated: it is free-form key/value data that any library may add, and it would leave the
PHI guard's reach as soon as it crossed a topic.

Every exporter this module installs is wrapped in :class:`PhiSafeSpanExporter`, which drops
deny-listed attribute keys and scrubs phone/e-mail patterns from string values before a span
leaves the process. Call sites should still use :func:`safe_attributes` so that the guard is a
backstop rather than the plan.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_NAMESPACE, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Link, Status, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from shared.config import TelemetrySettings
from shared.logging import is_phi_key, scrub_text
from shared.phi import is_patient_key_field, pseudonym, scrub_exception

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger(__name__)

# Probes and scrapes would otherwise be most of the traces and none of the signal.
EXCLUDED_URLS = "/healthz,/readyz,/metrics"

_propagator = TraceContextTextMapPropagator()
_setup_lock = threading.Lock()
_installed: TracerProvider | None = None


# --- PHI guard -------------------------------------------------------------------------------


def safe_attributes(attributes: Mapping[str, Any] | None) -> dict[str, AttributeValue]:
    """Span attributes without deny-listed keys, with strings scrubbed of phones and e-mails.

    Values OpenTelemetry cannot carry (None, dicts, objects) are dropped or stringified.
    """
    clean: dict[str, AttributeValue] = {}
    for key, value in (attributes or {}).items():
        if is_phi_key(key):
            continue
        if isinstance(value, str) and is_patient_key_field(key):
            clean[key] = pseudonym(value)
        elif key in _EXCEPTION_TEXT and isinstance(value, str):
            clean[key] = scrub_exception(value)
        elif isinstance(value, str):
            clean[key] = scrub_text(value)
        elif isinstance(value, bool | int | float):
            clean[key] = value
        elif isinstance(value, list | tuple):
            if all(isinstance(item, str) for item in value):
                clean[key] = [scrub_text(item) for item in value]
            elif all(isinstance(item, bool | int | float) for item in value):
                clean[key] = list(value)
        elif value is not None:
            clean[key] = scrub_text(str(value))
    return clean


# Exception events carry the exception's text and traceback: values quoted in them go.
_EXCEPTION_TEXT = frozenset({"exception.message", "exception.stacktrace"})
# A request's path and query can name a patient (/patients/{patient_key}/...): spans keep the
# route template instead, which says what was asked without saying about whom.
_URL_ATTRIBUTES = ("http.target", "http.url", "url.path", "url.full", "url.query")


def _without_identifiers_in_urls(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    found = dict(attributes or {})
    if not any(name in found for name in _URL_ATTRIBUTES):
        return found
    route = found.get("http.route")
    for name in _URL_ATTRIBUTES:
        if name in found:
            if route and name in ("http.target", "url.path"):
                found[name] = route
            else:
                del found[name]
    return found


def _safe_span(span: ReadableSpan) -> ReadableSpan:
    # Finished spans are immutable, so the guard builds a cleaned copy for the exporter.
    status = span.status
    if status.description:
        status = Status(status.status_code, scrub_exception(status.description))
    return ReadableSpan(
        name=scrub_text(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=safe_attributes(_without_identifiers_in_urls(span.attributes)),
        events=[
            Event(event.name, safe_attributes(event.attributes), event.timestamp)
            for event in span.events
        ],
        links=[Link(link.context, safe_attributes(link.attributes)) for link in span.links],
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class PhiSafeSpanExporter(SpanExporter):
    """Wraps an exporter; spans reach it only after the PHI guard has cleaned them."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([_safe_span(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def attach_exporter(
    provider: TracerProvider, exporter: SpanExporter, *, batch: bool = True
) -> None:
    """Send ``provider``'s spans to ``exporter`` through the PHI guard.

    ``batch=False`` exports synchronously on span end, which tests want; services batch.
    """
    guarded = PhiSafeSpanExporter(exporter)
    processor = BatchSpanProcessor(guarded) if batch else SimpleSpanProcessor(guarded)
    provider.add_span_processor(processor)


# --- set-up ----------------------------------------------------------------------------------


def span_exporter_for(settings: TelemetrySettings) -> SpanExporter | None:
    """The OTLP/HTTP exporter the settings ask for, or None when export is off (the default)."""
    endpoint = settings.otel_exporter_otlp_endpoint.strip()
    if not endpoint:
        return None
    # Imported here so a process that never exports does not load the protobuf stack.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # The setting is the collector's base URL, as with OTEL_EXPORTER_OTLP_ENDPOINT.
    return OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")


def build_tracer_provider(service: str, settings: TelemetrySettings) -> TracerProvider:
    """A provider for ``service`` with the configured exporter; touches no global state."""
    resource = Resource.create(
        {
            SERVICE_NAME: f"revisit-{service}",
            SERVICE_NAMESPACE: settings.otel_service_namespace,
        }
    )
    provider = TracerProvider(resource=resource)
    exporter = span_exporter_for(settings)
    if exporter is not None:
        attach_exporter(provider, exporter, batch=True)
    return provider


def setup_tracing(service: str, settings: TelemetrySettings) -> TracerProvider:
    """Install the process-wide tracer provider once; later calls return the same provider.

    OpenTelemetry lets the global provider be set only once per process, so a second call
    (tests, or two services sharing a process) gets the first provider back rather than a
    silently ignored new one. Code that needs an isolated provider uses
    :func:`build_tracer_provider`.
    """
    global _installed
    with _setup_lock:
        if _installed is not None:
            if _installed.resource.attributes.get(SERVICE_NAME) != f"revisit-{service}":
                log.info("tracing already set up for another service; reusing it")
            return _installed
        existing = trace.get_tracer_provider()
        if isinstance(existing, TracerProvider):
            # Someone (an auto-instrumentation agent) installed an SDK provider first: keep it.
            _installed = existing
            return existing
        provider = build_tracer_provider(service, settings)
        trace.set_tracer_provider(provider)
        _installed = provider
        return provider


def tracer(name: str) -> Tracer:
    """A tracer from the global provider (a no-op tracer until :func:`setup_tracing`)."""
    return trace.get_tracer(name)


def instrument_fastapi(app: FastAPI) -> None:
    """Trace every request of ``app`` except health probes and metric scrapes."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    if getattr(app.state, "revisit_tracing_instrumented", False):
        return
    FastAPIInstrumentor.instrument_app(app, excluded_urls=EXCLUDED_URLS)
    app.state.revisit_tracing_instrumented = True


# --- propagation -----------------------------------------------------------------------------


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``headers`` plus the W3C trace context of the current span (if any)."""
    carrier = dict(headers or {})
    _propagator.inject(carrier)
    return carrier


def kafka_headers(headers: Mapping[str, str]) -> list[tuple[str, bytes]]:
    """Headers in the shape aiokafka's ``send(headers=...)`` expects."""
    return [(key, value.encode("utf-8")) for key, value in headers.items()]


def context_from_kafka_headers(
    headers: Sequence[tuple[str, bytes | None]] | Mapping[str, str | bytes] | None,
) -> Context:
    """The trace context a producer put in a record's headers (an empty context if none).

    Accepts aiokafka's list of pairs and FastStream's dict. Header names are matched
    case-insensitively; undecodable values are ignored rather than failing the consumer.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    carrier: dict[str, str] = {}
    for key, value in pairs:
        if value is None:
            continue
        try:
            text = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            continue
        carrier[key.lower()] = text
    return _propagator.extract(carrier, context=otel_context.Context())


def current_trace_id() -> str | None:
    """The current span's trace id as 32 hex characters, or None outside a span."""
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None
