"""Fixtures shared by the EHR tests and the messenger's EHR conversation tests: the local
authorisation server, the Medplum FHIR server behind it, synthetic signing keys and clients."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.ehr.authserver import AuthServer, Client, Issued
from tests.ehr.fhirserver import FhirServer

SCOPES = frozenset(
    {
        "system/Patient.read",
        "system/Slot.read",
        "system/Schedule.read",
        "system/Appointment.write",
        "system/Communication.write",
    }
)


@dataclass(frozen=True)
class SigningKey:
    algorithm: str
    kid: str
    private_pem: str
    jwk: dict[str, object]


def rsa_key() -> SigningKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = f"rsa-{uuid.uuid4().hex[:6]}"
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return SigningKey("RS384", kid, _pem(key), {**jwk, "kid": kid, "alg": "RS384"})


def ec_key() -> SigningKey:
    key = ec.generate_private_key(ec.SECP384R1())
    kid = f"ec-{uuid.uuid4().hex[:6]}"
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return SigningKey("ES384", kid, _pem(key), {**jwk, "kid": kid, "alg": "ES384"})


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def smart_client(server: AuthServer, key: SigningKey, *, expires_in: int = 300) -> str:
    client_id = f"revisit-{uuid.uuid4().hex[:8]}"
    server.register(Client(client_id, jwks=[key.jwk], scopes=SCOPES, expires_in=expires_in))
    return client_id


def static_token(server: AuthServer) -> str:
    """A long-lived token the EHR issued by hand (what ``static`` auth holds)."""
    value = f"static-{uuid.uuid4().hex}"
    server.tokens[value] = Issued("static", " ".join(SCOPES), time.time() + 86400)
    return value


@pytest.fixture(scope="session")
async def auth_server() -> AsyncIterator[AuthServer]:
    server = AuthServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def fhir_server(auth_server: AuthServer) -> AsyncIterator[FhirServer]:
    server = FhirServer(
        introspect=f"{auth_server.base_url}/introspect", token_url=auth_server.token_url
    )
    await server.start()
    yield server
    await server.stop()
