"""Authorisation against a real local authorisation server and the Medplum FHIR server that
admits only the tokens it issued: SMART Backend Services (RS384, ES384, discovery, caching),
client credentials, static tokens; and the server's refusals, so a pass means something."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from services.messenger.ehr.auth import (
    AuthSetupError,
    ClientCredentials,
    SmartBackend,
    StaticToken,
    token_source,
)
from services.messenger.ehr.client import EhrUnavailable, FhirClient
from services.messenger.ehr.domain import smart
from services.messenger.ehr.domain.connection import (
    AuthKind,
    AuthSettings,
    Connection,
    ConnectionSettings,
)
from services.messenger.ehr.domain.smart import TokenRefused
from tests.ehr.authserver import AuthServer, Client
from tests.ehr.fhirserver import FhirServer
from tests.ehr.fixtures import SCOPES, ec_key, rsa_key, smart_client, static_token

pytestmark = pytest.mark.integration
SCOPE = " ".join(sorted(SCOPES))


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


async def patients_visible(client: FhirClient) -> int:
    answer = await client.search("Patient", {"_count": "1"})
    return answer.status


@pytest.mark.parametrize("make_key", [rsa_key, ec_key], ids=["RS384", "ES384"])
async def test_smart_backend_services_gets_a_token_the_fhir_server_accepts(
    auth_server: AuthServer, fhir_server: FhirServer, make_key: object
) -> None:
    key = make_key()  # type: ignore[operator]
    client_id = smart_client(auth_server, key)
    async with httpx.AsyncClient() as http:
        source = SmartBackend(
            http,
            Clock(),
            base_url=fhir_server.base,
            client_id=client_id,
            private_key_pem=key.private_pem,
            algorithm=key.algorithm,
            key_id=key.kid,
            scope=SCOPE,
        )
        client = FhirClient(fhir_server.base, source, http)
        assert await patients_visible(client) == 200
        # The token endpoint came from the server's .well-known/smart-configuration.
        assert source.token_url == auth_server.token_url
        assert await patients_visible(client) == 200
        assert source.requests == 1  # cached: one token for both calls


async def test_without_a_token_the_fhir_server_refuses(fhir_server: FhirServer) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{fhir_server.base}/Patient")
    assert answer.status_code == 401


async def test_a_token_is_fetched_again_shortly_before_it_expires(
    auth_server: AuthServer, fhir_server: FhirServer
) -> None:
    key = rsa_key()
    client_id = smart_client(auth_server, key, expires_in=61)  # usable for 1 s with the margin
    clock = Clock()
    async with httpx.AsyncClient() as http:
        source = SmartBackend(
            http,
            clock,
            base_url=fhir_server.base,
            client_id=client_id,
            private_key_pem=key.private_pem,
            algorithm="RS384",
            key_id=key.kid,
            scope=SCOPE,
        )
        first = await source.authorization()
        clock.at += timedelta(milliseconds=500)
        assert await source.authorization() == first
        clock.at += timedelta(seconds=1)
        second = await source.authorization()
    assert second != first and source.requests == 2


async def test_a_token_the_ehr_revoked_is_replaced_once(
    auth_server: AuthServer, fhir_server: FhirServer
) -> None:
    key = ec_key()
    client_id = smart_client(auth_server, key)
    async with httpx.AsyncClient() as http:
        source = SmartBackend(
            http,
            Clock(),
            base_url=fhir_server.base,
            client_id=client_id,
            private_key_pem=key.private_pem,
            algorithm="ES384",
            key_id=key.kid,
            scope=SCOPE,
        )
        client = FhirClient(fhir_server.base, source, http)
        assert await patients_visible(client) == 200
        auth_server.tokens.clear()  # revoked at the EHR
        assert await patients_visible(client) == 200
    assert source.requests == 2


async def test_an_assertion_signed_with_an_unregistered_key_is_refused_as_invalid_client(
    auth_server: AuthServer, fhir_server: FhirServer
) -> None:
    registered, other = rsa_key(), rsa_key()
    client_id = smart_client(auth_server, registered)
    async with httpx.AsyncClient() as http:
        source = SmartBackend(
            http,
            Clock(),
            base_url=fhir_server.base,
            client_id=client_id,
            private_key_pem=other.private_pem,
            algorithm="RS384",
            key_id=registered.kid,
            scope=SCOPE,
        )
        with pytest.raises(TokenRefused) as refused:
            await source.authorization()
        with pytest.raises(EhrUnavailable, match="invalid_client"):
            await patients_visible(FhirClient(fhir_server.base, source, http))
    assert refused.value.error == "invalid_client" and refused.value.status == 401
    assert "PRIVATE" not in str(refused.value)


async def _post_assertion(auth_server: AuthServer, assertion: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(auth_server.token_url, data=smart.assertion_form(assertion, SCOPE))


def _assertion(key: object, client_id: str, **claims: object) -> str:
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "exp": now + 240, "jti": f"j-{time.time_ns()}"}
    body |= {"aud": claims.pop("aud")} if "aud" in claims else {}
    body |= claims
    return jwt.encode(body, key.private_pem, algorithm=key.algorithm, headers={"kid": key.kid})  # type: ignore[attr-defined]


async def test_the_authorisation_server_refuses_replays_wrong_audiences_and_long_lives(
    auth_server: AuthServer,
) -> None:
    key = rsa_key()
    client_id = smart_client(auth_server, key)
    good = _assertion(key, client_id, aud=auth_server.token_url)
    assert (await _post_assertion(auth_server, good)).status_code == 200
    for bad, why in (
        (good, "jti already used"),
        (_assertion(key, client_id, aud="https://elsewhere.example/token"), "InvalidAudience"),
        (
            _assertion(key, client_id, aud=auth_server.token_url, exp=int(time.time()) + 900),
            "more than five minutes",
        ),
        (_assertion(key, client_id, aud=auth_server.token_url, sub="someone-else"), "sub"),
    ):
        answer = await _post_assertion(auth_server, bad)
        assert answer.status_code == 401
        assert answer.json()["error"] == "invalid_client"
        assert why in answer.json()["error_description"]


async def test_an_hmac_signed_assertion_is_refused(auth_server: AuthServer) -> None:
    key = rsa_key()
    client_id = smart_client(auth_server, key)
    claims = {"iss": client_id, "sub": client_id, "aud": auth_server.token_url, "jti": "x1"}
    claims["exp"] = int(time.time()) + 60
    forged = jwt.encode(
        claims, "a-shared-secret-long-enough-for-sha-384-hmac-keys-0123", algorithm="HS384"
    )
    answer = await _post_assertion(auth_server, forged)
    assert answer.status_code == 401 and "RS384 or ES384" in answer.json()["error_description"]


async def test_client_credentials_with_the_right_secret_only(
    auth_server: AuthServer, fhir_server: FhirServer
) -> None:
    auth_server.register(Client("cc-client", secret="s3cret-value", scopes=SCOPES))
    async with httpx.AsyncClient() as http:
        good = ClientCredentials(
            http, Clock(), token_url=auth_server.token_url, client_id="cc-client",
            secret="s3cret-value", scope=SCOPE,
        )  # fmt: skip
        assert await patients_visible(FhirClient(fhir_server.base, good, http)) == 200
        bad = ClientCredentials(
            http, Clock(), token_url=auth_server.token_url, client_id="cc-client",
            secret="wrong", scope=SCOPE,
        )  # fmt: skip
        with pytest.raises(TokenRefused) as refused:
            await bad.authorization()
    assert refused.value.error == "invalid_client"
    assert "wrong" not in str(refused.value)


async def test_a_static_token_is_sent_as_it_is(
    auth_server: AuthServer, fhir_server: FhirServer
) -> None:
    async with httpx.AsyncClient() as http:
        good = FhirClient(fhir_server.base, StaticToken(static_token(auth_server)), http)
        assert await patients_visible(good) == 200
        bad = FhirClient(fhir_server.base, StaticToken("not-issued"), http)
        with pytest.raises(EhrUnavailable, match="http 401"):
            await patients_visible(bad)


def test_a_connection_whose_secret_variable_is_missing_says_which_variable() -> None:
    connection = Connection(
        clinic_id="c-1",
        settings=ConnectionSettings(
            base_url="https://ehr.example/fhir",
            auth=AuthSettings(kind=AuthKind.static, token_env="REVISIT_EHR_C_1_TOKEN"),
        ),
    )
    with pytest.raises(AuthSetupError, match="REVISIT_EHR_C_1_TOKEN is not set"):
        token_source(connection, httpx.AsyncClient(), {})
    source = token_source(connection, httpx.AsyncClient(), {"REVISIT_EHR_C_1_TOKEN": " t0k "})
    assert isinstance(source, StaticToken)
