from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import shared.telemetry as telemetry
from shared.config import TelemetrySettings
from shared.phi import pseudonym
from shared.telemetry import (
    attach_exporter,
    build_tracer_provider,
    context_from_kafka_headers,
    current_trace_id,
    inject_headers,
    instrument_fastapi,
    kafka_headers,
    safe_attributes,
    setup_tracing,
    span_exporter_for,
    tracer,
)

OFF = TelemetrySettings(otel_exporter_otlp_endpoint="")


@pytest.fixture(scope="module")
def provider() -> TracerProvider:
    # The global provider can be set once per process; setup_tracing hands back the same one.
    return setup_tracing("test", OFF)


@pytest.fixture(scope="module")
def module_spans(provider: TracerProvider) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    attach_exporter(provider, exporter, batch=False)
    return exporter


@pytest.fixture
def spans(module_spans: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    module_spans.clear()
    yield module_spans


def test_trace_context_survives_a_trip_through_kafka_headers(provider: TracerProvider) -> None:
    with tracer("producer").start_as_current_span("publish") as span:
        headers = kafka_headers(inject_headers({"event-type": "visit.completed"}))
        sent = span.get_span_context()
    assert ("event-type", b"visit.completed") in headers
    received = trace.get_current_span(context_from_kafka_headers(headers)).get_span_context()
    assert (received.trace_id, received.span_id) == (sent.trace_id, sent.span_id)
    assert received.is_remote


def test_consumer_span_started_from_headers_joins_the_producers_trace(
    provider: TracerProvider,
) -> None:
    with tracer("producer").start_as_current_span("publish") as span:
        headers = kafka_headers(inject_headers())
        producer_trace = format(span.get_span_context().trace_id, "032x")
    with tracer("consumer").start_as_current_span(
        "consume", context=context_from_kafka_headers(headers)
    ) as child:
        assert current_trace_id() == producer_trace
        assert isinstance(child, ReadableSpan) and child.parent is not None
        assert child.parent.span_id == span.get_span_context().span_id


def test_faststream_style_dict_headers_are_accepted_case_insensitively(
    provider: TracerProvider,
) -> None:
    with tracer("producer").start_as_current_span("publish"):
        carrier = {key.upper(): value for key, value in inject_headers().items()}
        expected = current_trace_id()
    extracted = trace.get_current_span(context_from_kafka_headers(carrier)).get_span_context()
    assert format(extracted.trace_id, "032x") == expected


def test_missing_or_garbled_headers_give_a_fresh_root_context() -> None:
    for headers in (None, [], [("traceparent", b"\xff\xfe"), ("other", None)]):
        context = context_from_kafka_headers(headers)
        assert not trace.get_current_span(context).get_span_context().is_valid


def test_no_current_span_means_no_trace_id_and_no_traceparent() -> None:
    assert current_trace_id() is None
    assert inject_headers({"a": "b"}) == {"a": "b"}


def test_no_exporter_is_installed_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    attached: list[SpanExporter] = []
    monkeypatch.setattr(telemetry, "attach_exporter", lambda p, e, batch: attached.append(e))
    assert span_exporter_for(OFF) is None
    build_tracer_provider("segmenter", OFF)
    assert attached == []


def test_an_endpoint_installs_an_otlp_http_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    attached: list[SpanExporter] = []
    monkeypatch.setattr(telemetry, "attach_exporter", lambda p, e, batch: attached.append(e))
    settings = TelemetrySettings(otel_exporter_otlp_endpoint="http://collector:4318/")
    provider = build_tracer_provider("segmenter", settings)
    (exporter,) = attached
    assert isinstance(exporter, OTLPSpanExporter)
    assert provider.resource.attributes["service.name"] == "revisit-segmenter"
    assert provider.resource.attributes["service.namespace"] == "revisit"


def test_setup_tracing_twice_returns_the_one_global_provider(provider: TracerProvider) -> None:
    assert setup_tracing("another", OFF) is provider
    assert trace.get_tracer_provider() is provider
    # Whichever service set it first in this process names it (another test may have run one).
    assert str(provider.resource.attributes["service.name"]).startswith("revisit-")
    assert provider.resource.attributes["service.name"] != "revisit-another"


def test_spans_are_recorded_by_an_attached_exporter(spans: InMemorySpanExporter) -> None:
    with tracer("t").start_as_current_span("decide", attributes={"segment": "lapsed_patient"}):
        pass
    (span,) = spans.get_finished_spans()
    assert span.name == "decide" and span.attributes == {"segment": "lapsed_patient"}


def test_phi_never_leaves_the_process_in_span_attributes_or_events(
    spans: InMemorySpanExporter,
) -> None:
    attributes = {"patient_key": "c1:p1", "phone": "+15551234567", "note": "to a@b.example"}
    with tracer("t").start_as_current_span("send", attributes=attributes) as span:
        span.add_event("bounced", {"email": "a@b.example", "reason": "call 555-123-4567"})
        span.record_exception(ValueError("unknown +15551234567"))
    (exported,) = spans.get_finished_spans()
    assert exported.attributes == {"patient_key": pseudonym("c1:p1"), "note": "to [email]"}
    bounced, exception = exported.events
    assert bounced.attributes == {"reason": "call [phone]"}
    assert exception.attributes is not None
    assert exception.attributes["exception.message"] == "unknown [phone]"


def test_safe_attributes_drops_phi_keys_and_values_otel_cannot_carry() -> None:
    cleaned = safe_attributes(
        {"Name": "Jane", "attempt": 2, "tags": ["sms", "x@y.example"], "missing": None, "m": {}}
    )
    assert cleaned == {"attempt": 2, "tags": ["sms", "[email]"], "m": "{}"}


async def test_fastapi_requests_are_traced_except_probes(spans: InMemorySpanExporter) -> None:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/sequences")
    async def sequences() -> list[str]:
        return []

    instrument_fastapi(app)
    instrument_fastapi(app)  # a second call is harmless
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        await http.get("/healthz")
        await http.get("/sequences")
    routes = {s.attributes.get("http.route") for s in spans.get_finished_spans() if s.attributes}
    assert "/sequences" in routes and "/healthz" not in routes
