"""A small OpenID Connect provider for tests: a real HTTP server on 127.0.0.1 with discovery,
JWKS, an authorization endpoint that signs the configured person in at once, and a token
endpoint that checks the code, the redirect URI, the client and the PKCE verifier (S256) before
it issues an RS256-signed ID token and an RS256-signed access token for the services' audience.

``misbehave`` makes the next ID tokens wrong in one way, to test that the console refuses them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "revisit-console"
CLIENT_SECRET = "provider-test-client-secret"
API_AUDIENCE = "revisit-ops"  # the services' audience (REVISIT_OIDC_AUDIENCE)


def _key() -> tuple[Any, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return private, public


@dataclass
class Provider:
    issuer: str = ""
    claims: dict[str, Any] = field(default_factory=dict)  # who signs in
    misbehave: str = ""  # see id_token
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    token_requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.private, public = _key()
        self.kid = "key-1"
        self.jwks = {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}
        self.stranger, _ = _key()  # a key the provider never publishes

    def access_token(self) -> str:
        """What the services are called with: a JWT for their audience, with the person's
        Revisit role and clinics and a jti (as an identity provider's access token for an API)."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "staff-42",
            "aud": API_AUDIENCE,
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(16),
            "azp": CLIENT_ID,
            **{k: v for k, v in self.claims.items() if k.startswith("revisit_")},
        }
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": self.kid})

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "staff-42",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            **self.claims,
        }
        key, kid = self.private, self.kid
        if self.misbehave == "nonce":
            claims["nonce"] = "someone-elses"
        elif self.misbehave == "audience":
            claims["aud"] = "another-app"
        elif self.misbehave == "expired":
            claims["iat"], claims["exp"] = now - 4000, now - 3600
        elif self.misbehave == "issuer":
            claims["iss"] = "https://impostor.example"
        elif self.misbehave == "stranger_key":  # a published key's id, someone else's key
            key = self.stranger
        elif self.misbehave == "unknown_kid":
            key, kid = self.stranger, "key-9"
        if self.misbehave == "none_alg":
            return jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _json(self, status: int, doc: Any) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/.well-known/openid-configuration":
                self._json(
                    200,
                    {
                        "issuer": provider.issuer,
                        "authorization_endpoint": f"{provider.issuer}/authorize",
                        "token_endpoint": f"{provider.issuer}/token",
                        "jwks_uri": f"{provider.issuer}/jwks",
                        "response_types_supported": ["code"],
                        "code_challenge_methods_supported": ["S256"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                    },
                )
            elif url.path == "/jwks":
                self._json(200, provider.jwks)
            elif url.path == "/authorize":
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if q.get("code_challenge_method") != "S256" or q.get("client_id") != CLIENT_ID:
                    self._json(400, {"error": "invalid_request"})
                    return
                code = secrets.token_urlsafe(16)
                provider.codes[code] = q
                target = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
                self.send_response(302)
                self.send_header("Location", target)
                self.end_headers()
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            provider.token_requests.append(form)
            basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if self.headers.get("Authorization") != f"Basic {basic}":
                self._json(401, {"error": "invalid_client"})
                return
            asked = provider.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "").encode()
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
            if (
                asked is None
                or form.get("redirect_uri") != asked["redirect_uri"]
                or challenge.decode() != asked["code_challenge"]
            ):
                self._json(400, {"error": "invalid_grant"})
                return
            self._json(
                200,
                {
                    "access_token": provider.access_token(),
                    "token_type": "Bearer",
                    "id_token": provider.id_token(asked["nonce"]),
                    "expires_in": 300,
                },
            )

    return Handler


@contextmanager
def running_provider() -> Iterator[Provider]:
    provider = Provider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
