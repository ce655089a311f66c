"""A tiny OpenAI-compatible chat-completions endpoint on a free local port, for the outside
reader's contract tests: ``POST /v1/chat/completions`` with a bearer token, answering the
documented shape (``choices[0].message.content``). ``script`` says what the next calls do."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response

KEY = "local-llm-key"


@dataclass
class FakeLlm:
    reading: dict[str, Any] = field(default_factory=dict)  # what the model "answers"
    script: list[str] = field(default_factory=list)  # "ok", "slow", "500", "garbage"
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def complete(request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {KEY}":
                body = {"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}
                return Response(json.dumps(body), 401, media_type="application/json")
            self.requests.append(await request.json())
            step = self.script.pop(0) if self.script else "ok"
            if step == "slow":
                await asyncio.sleep(5)
            if step == "500":
                return Response('{"error": {"message": "overloaded"}}', 500)
            content = "not json at all" if step == "garbage" else json.dumps(self.reading)
            answer = {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.requests[-1].get("model", ""),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            }
            return Response(json.dumps(answer), 200, media_type="application/json")

        return app


@contextlib.asynccontextmanager
async def running_llm() -> AsyncIterator[FakeLlm]:
    fake = FakeLlm()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(fake.app(), log_level="warning", lifespan="off", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        server.force_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=5)
        sock.close()
