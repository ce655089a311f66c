"""Helpers for the escalation tests: a real local HTTP server that records what it receives."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 202
    body: bytes = b'{"status":"success","message":"Event processed"}'
    delay_s: float = 0.0
    hold: threading.Event | None = None  # answer only once this is set


@dataclass
class RecordingServer:
    """Answers with the queued replies in order (then ``default``), recording every request."""

    default: Reply = field(default_factory=Reply)
    replies: list[Reply] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    on_request: Callable[[Received], Reply | None] | None = None
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply_for(self, request: Received) -> Reply:
        with self._lock:
            self.received.append(request)
            if self.on_request is not None and (chosen := self.on_request(request)) is not None:
                return chosen
            return self.replies.pop(0) if self.replies else self.default

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.replies.clear()
            self.on_request = None
            self.default = Reply()


def _handler(server: RecordingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            request = Received(
                "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            reply = server.reply_for(request)
            if reply.hold is not None:
                reply.hold.wait(timeout=30)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def http_server() -> Iterator[RecordingServer]:
    recorder = RecordingServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    httpd.daemon_threads = True
    httpd.handle_error = lambda *_: None  # type: ignore[method-assign]
    recorder.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, name="recording-http", daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def server(http_server: RecordingServer) -> Iterator[RecordingServer]:
    http_server.reset()
    yield http_server
    http_server.reset()


# --- a migrated database and a hand-built runtime (no broker) ------------------------------------


@pytest.fixture(scope="session")
async def escalation_dsn(pg: Any) -> str:
    from revisit.migrate import migrate_all

    await migrate_all(pg.dsn)
    return str(pg.dsn)


@pytest.fixture(scope="module")
async def service(escalation_dsn: str, kafka: Any) -> Any:
    """The escalation service, started once per module (a consumer-group join takes seconds)."""
    from tests.escalation.service_harness import running_service

    async with running_service(escalation_dsn, kafka.bootstrap) as running:
        yield running
