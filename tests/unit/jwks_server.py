"""An identity provider's key endpoints for tests: a real HTTP server on 127.0.0.1 serving the
OpenID discovery document and a JWKS, with keys generated in the test (RSA and EC), that can
rotate its keys and counts how often its key set is read."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

AUDIENCE = "revisit-ops"


def rsa_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> Any:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(private: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = (
        jwt.algorithms.RSAAlgorithm if alg.startswith(("RS", "PS")) else jwt.algorithms.ECAlgorithm
    )
    public = json.loads(algorithm.to_jwk(private.public_key()))
    return {**public, "kid": kid, "use": "sig", "alg": alg}


@dataclass
class Issuer:
    issuer: str = ""
    keys: dict[str, tuple[Any, str]] = field(default_factory=dict)  # kid -> (private, alg)
    published: list[str] = field(default_factory=list)  # kids in the JWKS
    jwks_reads: int = 0

    def add_key(self, kid: str, alg: str = "RS256", publish: bool = True) -> None:
        self.keys[kid] = (rsa_key() if alg.startswith(("RS", "PS")) else ec_key(), alg)
        if publish:
            self.published.append(kid)

    def rotate(self, new_kid: str, alg: str = "RS256") -> None:
        """Publish a new key and stop publishing the old ones."""
        self.add_key(new_kid, alg, publish=False)
        self.published = [new_kid]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.keys[k][0], k, self.keys[k][1]) for k in self.published]}

    def token(self, kid: str = "k1", *, ttl_s: int = 300, **claims: Any) -> str:
        private, alg = self.keys[kid]
        now = int(time.time())
        body = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "nurse-7",
            "iat": now,
            "exp": now + ttl_s,
            "jti": uuid.uuid4().hex,
            "revisit_role": "operator",
            "revisit_clinics": ["clinic-a"],
        } | claims
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, private, algorithm=alg, headers={"kid": kid})


def _handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path == "/.well-known/openid-configuration":
                doc: dict[str, Any] = {"issuer": issuer.issuer, "jwks_uri": f"{issuer.issuer}/keys"}
            elif self.path == "/keys":
                issuer.jwks_reads += 1
                doc = issuer.jwks()
            else:
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def running_issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(issuer))
    issuer.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield issuer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
