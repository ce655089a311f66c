"""A real OAuth2 authorisation server for the tests, speaking SMART Backend Services and plain
client credentials over HTTP on 127.0.0.1, and refusing everything else with the OAuth2 error
shapes (RFC 6749 5.2: ``{"error": ..., "error_description": ...}``).

SMART (client_assertion): the JWT's signature must verify with a key the client registered
(a JWKS; ``kid`` picks the key), ``alg`` RS384 or ES384, ``iss`` = ``sub`` = the client id,
``aud`` = this token URL, ``exp`` in the future and at most five minutes ahead, and a ``jti``
never seen before. Client credentials: HTTP Basic with the registered secret. Tokens are opaque
and answer ``POST /introspect`` (RFC 7662), which the test FHIR server uses to admit requests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import jwt
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_LIFETIME_S = 300
SKEW_S = 5


@dataclass
class Client:
    client_id: str
    jwks: list[dict[str, Any]] = field(default_factory=list)
    secret: str | None = None
    scopes: frozenset[str] = frozenset()
    expires_in: int = 300


@dataclass
class Issued:
    client_id: str
    scope: str
    expires_at: float


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (no multipart parser needed)."""
    return dict(parse_qsl((await request.body()).decode(errors="replace")))


def _error(status: int, error: str, description: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store", **headers},
    )


class AuthServer:
    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.tokens: dict[str, Issued] = {}
        self.seen_jti: dict[str, float] = {}
        self.token_requests = 0
        self.refusals: list[str] = []  # the error code of every refusal, in order
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self.app = self._build()

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    def register(self, client: Client) -> None:
        self.clients[client.client_id] = client

    def _build(self) -> FastAPI:
        app = FastAPI(docs_url=None, redoc_url=None)

        @app.post("/token")
        async def token(request: Request) -> JSONResponse:
            self.token_requests += 1
            form = await _form(request)
            answer = self._token(form, request.headers.get("authorization", ""))
            if answer.status_code != 200:
                self.refusals.append(bytes(answer.body).decode())
            return answer

        @app.post("/introspect")
        async def introspect(request: Request) -> JSONResponse:
            value = str((await _form(request)).get("token") or "")
            issued = self.tokens.get(value)
            if issued is None or issued.expires_at <= time.time():
                return JSONResponse({"active": False})
            return JSONResponse(
                {
                    "active": True,
                    "client_id": issued.client_id,
                    "scope": issued.scope,
                    "exp": int(issued.expires_at),
                }
            )

        return app

    def _token(self, form: dict[str, Any], authorization: str) -> JSONResponse:
        if form.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type", "only client_credentials is supported")
        if "client_assertion" in form or "client_assertion_type" in form:
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                return _error(400, "invalid_request", "client_assertion_type must be jwt-bearer")
            client, problem = self._verify_assertion(str(form.get("client_assertion") or ""))
        elif authorization.startswith("Basic "):
            client, problem = self._verify_basic(authorization[6:])
        else:
            return _error(401, "invalid_client", "no client authentication")
        if client is None:
            return _error(401, "invalid_client", problem)
        asked = set(str(form.get("scope") or "").split())
        granted = asked & client.scopes if asked else set(client.scopes)
        if asked and not granted:
            return _error(400, "invalid_scope", "none of the requested scopes is allowed")
        value = secrets.token_urlsafe(32)
        scope = " ".join(sorted(granted))
        self.tokens[value] = Issued(client.client_id, scope, time.time() + client.expires_in)
        body = {
            "access_token": value,
            "token_type": "bearer",
            "expires_in": client.expires_in,
            "scope": scope,
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def _verify_basic(self, encoded: str) -> tuple[Client | None, str]:
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None, "malformed Basic credentials"
        client = self.clients.get(client_id)
        if client is None or client.secret is None:
            return None, "unknown client"
        if not hmac.compare_digest(client.secret.encode(), secret.encode()):
            return None, "wrong client secret"
        return client, ""

    def _verify_assertion(self, assertion: str) -> tuple[Client | None, str]:
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None, "the assertion is not a JWT"
        client = self.clients.get(str(claims.get("iss")))
        if client is None or not client.jwks:
            return None, "unknown client (iss)"
        if header.get("alg") not in ("RS384", "ES384"):
            return None, "alg must be RS384 or ES384"
        keys = [k for k in client.jwks if header.get("kid") in (None, k.get("kid"))]
        for jwk in keys:
            try:
                key = jwt.PyJWK(jwk, algorithm=header["alg"]).key
                verified = jwt.decode(
                    assertion,
                    key=key,
                    algorithms=[header["alg"]],
                    audience=self.token_url,
                    issuer=client.client_id,
                    options={"require": ["exp", "iss", "sub", "aud", "jti"]},
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                return None, f"assertion refused: {type(exc).__name__}"
            return self._claims_ok(client, verified)
        return None, "signature does not verify with a registered key"

    def _claims_ok(self, client: Client, claims: dict[str, Any]) -> tuple[Client | None, str]:
        now = time.time()
        if claims.get("sub") != client.client_id:
            return None, "sub must equal the client id"
        if float(claims["exp"]) > now + MAX_LIFETIME_S + SKEW_S:
            return None, "exp is more than five minutes ahead"
        jti = str(claims["jti"])
        self.seen_jti = {j: t for j, t in self.seen_jti.items() if t > now}
        if jti in self.seen_jti:
            return None, "jti already used"
        self.seen_jti[jti] = float(claims["exp"])
        return client, ""

    async def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        self._socket, self._server = sock, server
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._task.done():
                await self._task
            await asyncio.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5)
        if self._socket is not None:
            self._socket.close()
