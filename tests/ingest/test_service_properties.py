"""The running service under generated input: schemathesis over the ingest OpenAPI document, and
hypothesis bodies and MLLP frames that must never crash it or publish half a message.

Hypothesis drives synchronous tests, so each runs in a worker thread and hands every request to
the session's event loop, where the app, its database pool and its relay live.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance
from schemathesis.specs.openapi.checks import ignored_auth

from tests.ingest.conftest import Ingest
from tests.ingest.test_fhir_mapping import appointment, bundle
from tests.ingest.test_hl7v2_mapping import siu

pytestmark = pytest.mark.integration
T = TypeVar("T")
OWN = ("/events", "/fhir", "/hl7v2", "/admin")
FEW = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def on_loop(loop: asyncio.AbstractEventLoop, coro: Awaitable[T]) -> T:
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)  # type: ignore[arg-type]


async def test_every_operation_conforms_to_its_openapi_document(ingest: Ingest) -> None:
    clinic_id, key = await ingest.new_clinic("schema")
    doc = (await ingest.client.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(doc)
    loop = asyncio.get_running_loop()
    admin = ingest.admin([clinic_id])

    def exercise(operation: Any) -> int:
        headers = admin if operation.path.startswith("/admin") else {"X-API-Key": key}
        calls = 0

        @FEW
        @given(operation.as_strategy())
        def check(case: Any) -> None:
            nonlocal calls
            kwargs = case.as_transport_kwargs(base_url="http://ingest", headers=headers)
            kwargs.pop("verify", None)
            response = on_loop(loop, ingest.client.request(**_httpx(kwargs)))
            calls += 1
            assert response.status_code < 500, (operation.label, response.text)
            # The request schemas are deliberately loose (any FHIR resource, any HL7 text): what
            # makes a message valid is the mapping's business, answered 422 with a path. Auth
            # refusals are tested with real keys and tokens (test_api, test_admin); schemathesis'
            # own re-sends cannot reach this in-process app.
            case.validate_response(
                response, excluded_checks=[positive_data_acceptance, ignored_auth]
            )

        check()
        return calls

    labels = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith(OWN):
            continue  # /healthz, /readyz, /metrics belong to the shared runtime
        labels.append(operation.label)
        assert await asyncio.to_thread(exercise, operation) > 0
    assert "POST /fhir/r4" in labels and "POST /hl7v2" in labels and "POST /admin/replay" in labels


def _httpx(kwargs: dict[str, Any]) -> dict[str, Any]:
    allowed = {"method", "url", "headers", "params", "content", "json", "data", "files"}
    out = {k: v for k, v in kwargs.items() if k in allowed}
    if "data" in out and isinstance(out["data"], str | bytes):
        out["content"] = out.pop("data")
    return out


async def test_generated_bundles_are_accepted_whole_or_refused_whole(ingest: Ingest) -> None:
    clinic_id, key = await ingest.new_clinic("bundles")
    loop = asyncio.get_running_loop()
    values = st.none() | st.integers() | st.text(max_size=12) | st.lists(st.text(max_size=5))

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(sorted(appointment())), values, st.integers(0, 10**9))
    def check(field: str, value: Any, salt: int) -> None:
        broken = appointment(id=f"b-{salt}")
        broken[field] = value
        doc = bundle(appointment(id=f"a-{salt}"), broken)
        before = on_loop(loop, ingest.events_staged(clinic_id))
        answer = on_loop(
            loop,
            ingest.client.post("/fhir/r4", content=json.dumps(doc), headers={"X-API-Key": key}),
        )
        added = on_loop(loop, ingest.events_staged(clinic_id)) - before
        assert answer.status_code in (200, 202, 400, 409, 422), answer.text
        if answer.status_code == 202:
            assert added == answer.json()["accepted"] >= 1
        else:
            assert added == 0

    await asyncio.to_thread(check)


async def test_random_frames_over_mllp_never_stop_the_listener(ingest: Ingest) -> None:
    _, key = await ingest.new_clinic("frames")
    port = ingest.mllp_port
    frames = st.binary(max_size=200).filter(lambda b: b"\x1c\x0d" not in b)

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(frames, st.booleans())
    def check(frame: bytes, as_hl7: bool) -> None:
        body = (b"MSH|^~\\&|" + frame) if as_hl7 else frame
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"\x0b" + body + b"\x1c\x0d")
            assert _read_frame(sock).startswith(b"MSH|")

    await asyncio.to_thread(check)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        message = siu(security=key, control="AFTER").encode()
        await asyncio.to_thread(sock.sendall, b"\x0b" + message + b"\x1c\x0d")
        ack = await asyncio.to_thread(_read_frame, sock)
    assert b"MSA|AA|AFTER" in ack


def _read_frame(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\x1c\x0d"):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a whole ACK")
        data += chunk
    return data[1:-2]
