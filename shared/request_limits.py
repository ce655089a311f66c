"""Request body limits, enforced before any route reads, parses or authenticates a body.

Every service refuses a body larger than ``REVISIT_MAX_BODY_BYTES`` (1 MiB) with a 413 that
says the limit; a service names the few paths that need more (ingest's EHR submissions) or
less (the messenger's provider webhooks, which anyone on the internet can reach) by prefix.
A declared ``Content-Length`` over the limit is refused without reading anything; a chunked
body is read only up to the limit.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 1_048_576


def limit_for(path: str, default: int, by_prefix: Mapping[str, int]) -> int:
    """The limit of the longest matching prefix, else the default."""
    matches = [prefix for prefix in by_prefix if path.startswith(prefix)]
    return by_prefix[max(matches, key=len)] if matches else default


class BodyLimit:
    """ASGI middleware: 413 for a body over the path's limit (nothing of it reaches the app)."""

    def __init__(
        self,
        app: ASGIApp,
        default: int = DEFAULT_MAX_BODY_BYTES,
        by_prefix: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.default = default
        self.by_prefix = dict(by_prefix or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope.get("path", ""), self.default, self.by_prefix)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, scope, limit)
            return
        body = bytearray()
        messages: list[Message] = []
        while True:  # read the body up to the limit before the app sees any of it
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > limit:
                await _refuse(send, scope, limit)
                return
            if not message.get("more_body", False):
                break
        last: Message = {"type": "http.request", "body": bytes(body), "more_body": False}
        if messages and messages[-1]["type"] != "http.request":
            last = messages[-1]  # the client went away: the app hears it
        replay = iter([last])

        async def replayed() -> Message:
            for message in replay:
                return message
            return await receive()

        await self.app(scope, replayed, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, scope: Scope, limit: int) -> None:
    where = f"{scope.get('method', '')} {scope.get('path', '')}"
    # The shape of ingest's problems (where, then what), which its routes declare for 413.
    problem = {"loc": "(body)", "msg": f"larger than {limit} bytes, the limit of {where}"}
    body = json.dumps({"detail": [problem]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
