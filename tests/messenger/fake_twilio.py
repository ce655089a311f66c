"""A tiny Twilio Messages API on a free local port (FastAPI + uvicorn), for contract tests.

It speaks the documented shapes: form-encoded create with basic auth (To, From or
MessagingServiceSid, Body, StatusCallback), a 201 JSON body shaped like the realdata sample,
error bodies ``{code, message, more_info, status}``, and the list endpoint filtered by To and
From, newest first, paged by PageSize. ``script`` makes the next create calls fail in the ways
a real network does. ``smart_encoding`` stores the body as Twilio's Smart Encoding sends it
(curly quotes and dashes replaced by their GSM-7 look-alikes), so the body Twilio lists is not
byte for byte the body sent. Like Twilio, the message resource does not show its
StatusCallback; ``callbacks`` holds (url, form) for each status change, for a test to deliver.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request, Response

SID = "AC" + "0" * 32
TOKEN = "local-auth-token"


@dataclass
class FakeTwilio:
    sample: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    script: list[str] = field(default_factory=list)  # next create outcomes
    unsubscribed: set[str] = field(default_factory=set)
    base_url: str = ""
    smart_encoding: bool = False
    callbacks: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def created_for(self, to: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["to"] == to]

    def app(self) -> FastAPI:
        app = FastAPI()
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()

        def error(status: int, code: int, message: str) -> Response:
            body = {
                "code": code,
                "message": message,
                "status": status,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
            }
            return Response(json.dumps(body), status, media_type="application/json")

        @app.post("/2010-04-01/Accounts/{sid}/Messages.json")
        async def create(sid: str, request: Request) -> Response:
            if request.headers.get("authorization") != expected or sid != SID:
                return error(401, 20003, "Authenticate")
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
            step = self.script.pop(0) if self.script else "ok"
            if step == "500-before":
                return error(500, 20500, "Internal Server Error")
            if step == "429":
                return Response(
                    json.dumps({"code": 20429, "message": "Too Many Requests", "status": 429}),
                    429,
                    headers={"Retry-After": "1"},
                )
            to = form.get("To", "")
            if not to.startswith("+") or not to[1:].isdigit():
                return error(400, 21211, "The 'To' number is not a valid phone number.")
            if to in self.unsubscribed:
                return error(400, 21610, "Attempt to send to unsubscribed recipient")
            now = format_datetime(datetime.now(UTC))
            message = {
                **self.sample,
                "sid": "SM" + uuid.uuid4().hex,
                "to": to,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": _smart(form.get("Body", ""))
                if self.smart_encoding
                else form.get("Body", ""),
                "status": "queued",
                "date_created": now,
                "date_updated": now,
                "date_sent": None,
            }
            self.messages.append(message)
            if form.get("StatusCallback"):
                self.callbacks.append(
                    (
                        form["StatusCallback"],
                        {
                            "MessageSid": message["sid"],
                            "SmsSid": message["sid"],
                            "MessageStatus": "sent",
                            "AccountSid": SID,
                            "To": to,
                            "From": form.get("From") or "",
                        },
                    )
                )
            if step == "500-after":
                return error(500, 20500, "Internal Server Error")
            if step == "hang-after":
                await asyncio.sleep(30)
            return Response(json.dumps(message), 201, media_type="application/json")

        @app.get("/2010-04-01/Accounts/{sid}/Messages.json")
        async def listing(sid: str, request: Request) -> dict[str, Any]:
            q = request.query_params
            found = [
                m
                for m in reversed(self.messages)
                if (not q.get("To") or m["to"] == q["To"])
                and (not q.get("From") or m["from"] == q["From"])
            ]
            size = int(q.get("PageSize", "50"))
            return {
                "messages": found[:size],
                "page": 0,
                "page_size": size,
                "first_page_uri": "",
                "next_page_uri": None,
            }

        return app


_SMART = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2014": "-"})


def _smart(body: str) -> str:
    return body.translate(_SMART)


@contextlib.asynccontextmanager
async def running_twilio(realdata_dir: Path) -> AsyncIterator[FakeTwilio]:
    sample = json.loads((realdata_dir / "twilio" / "message_create_response.json").read_text())
    fake = FakeTwilio(sample)
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
