from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from shared.auth import (
    Admin,
    AuthError,
    CurrentPrincipal,
    Operator,
    Principal,
    build_authenticator,
    decode_staff_token,
    hash_api_key_secret,
    issue_staff_token,
    new_api_key,
    parse_api_key,
    require_clinic,
    verify_api_key_secret,
)
from shared.config import AuthSettings

SECRET = "unit-test-secret-that-is-long-enough-0123456789"
SETTINGS = AuthSettings(revisit_jwt_secret=SECRET)
ISS, AUD = SETTINGS.revisit_jwt_issuer, SETTINGS.revisit_jwt_audience


def staff(
    role: str = "viewer", clinics: frozenset[str] | None = frozenset({"clinic-a"})
) -> Principal:
    return Principal(kind="staff", subject="u1", role=role, clinics=clinics)  # type: ignore[arg-type]


def token(role: str = "viewer", clinics: list[str] | str = ["clinic-a"], **kw: object) -> str:  # noqa: B006
    args: dict[str, object] = {"subject": "staff-1", "ttl": timedelta(minutes=5)} | kw
    return issue_staff_token(SECRET, role=role, clinics=clinics, **args)  # type: ignore[arg-type]


def decode(raw: str, secret: str = SECRET, audience: str = AUD) -> Principal:
    return decode_staff_token(raw, secret, issuer=ISS, audience=audience)


# --- principals ------------------------------------------------------------------------------


def test_roles_are_ordered_viewer_then_operator_then_admin() -> None:
    assert staff("admin").has_role("operator") and staff("admin").has_role("viewer")
    assert staff("operator").has_role("viewer") and not staff("operator").has_role("admin")
    assert not staff("viewer").has_role("operator")


def test_key_for_one_clinic_cannot_read_another() -> None:
    integration = Principal("integration", "api-key:x", "operator", frozenset({"clinic-a"}))
    require_clinic(integration, "clinic-a")
    with pytest.raises(AuthError) as refused:
        require_clinic(integration, "clinic-b")
    assert refused.value.status_code == 403
    assert "clinic-a" not in refused.value.detail and "clinic-b" not in refused.value.detail


def test_all_clinic_scope_reaches_every_clinic() -> None:
    assert staff("admin", clinics=None).may_access("any-clinic")


# --- API keys --------------------------------------------------------------------------------


def test_new_api_key_parses_back_to_its_id_and_verifies_against_its_hash() -> None:
    plaintext, key_id, stored_hash = new_api_key()
    parsed_id, secret = parse_api_key(plaintext)
    assert parsed_id == key_id
    assert stored_hash == hash_api_key_secret(secret) and secret not in stored_hash
    assert verify_api_key_secret(secret, stored_hash)


def test_verifying_a_wrong_secret_returns_false() -> None:
    _, _, stored_hash = new_api_key()
    _, other_secret = parse_api_key(new_api_key()[0])
    assert verify_api_key_secret(other_secret, stored_hash) is False
    assert verify_api_key_secret(other_secret, "not-a-hash-é") is False


@pytest.mark.parametrize(
    "presented",
    ["", "rvk_", "rvk_abc_def", "xyz_0123456789abcdef_" + "a" * 43, "rvk_0123456789abcdef_short"],
)
def test_malformed_api_key_is_refused_as_401(presented: str) -> None:
    with pytest.raises(AuthError) as refused:
        parse_api_key(presented)
    assert (refused.value.status_code, refused.value.detail) == (401, "malformed API key")


# --- staff tokens ----------------------------------------------------------------------------


def test_staff_token_round_trips_to_a_scoped_principal() -> None:
    principal = decode(token("operator", ["clinic-a", "clinic-b"]))
    assert principal == Principal(
        "staff", "staff-1", "operator", frozenset({"clinic-a", "clinic-b"})
    )


def test_admin_token_with_star_covers_all_clinics() -> None:
    assert decode(token("admin", "*")).clinics is None


def test_expired_token_is_refused_with_its_reason() -> None:
    issued = datetime.now(UTC) - timedelta(hours=2)
    with pytest.raises(AuthError, match="token expired"):
        decode(token(now=issued, ttl=timedelta(hours=1)))


def test_token_signed_with_another_secret_is_refused_as_bad_signature() -> None:
    with pytest.raises(AuthError, match="bad signature"):
        decode(token(), secret="another-secret-another-secret-another-secret")


def test_token_for_another_audience_is_refused() -> None:
    with pytest.raises(AuthError, match="wrong audience"):
        decode(token(audience="some-other-api"))


def test_non_admin_token_claiming_every_clinic_is_refused() -> None:
    with pytest.raises(ValueError, match="only an admin"):
        token("operator", "*")
    # A token minted outside issue_staff_token (or forged with a leaked key) is refused too.
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": "s", "role": "operator", "clinics": "*", "iss": ISS, "aud": AUD}
    forged = jwt.encode(claims | {"iat": now, "exp": now + 60, "jti": "j"}, SECRET)
    with pytest.raises(AuthError) as refused:
        decode(forged)
    assert refused.value.status_code == 401


def test_token_without_required_claims_is_refused() -> None:
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": "s", "role": "admin", "iss": ISS, "aud": AUD, "iat": now, "exp": now + 60}
    with pytest.raises(AuthError, match=r"no (clinics|jti) claim"):
        decode(jwt.encode(claims, SECRET))


def test_unsigned_token_is_refused() -> None:
    unsigned = jwt.encode({"sub": "s"}, None, algorithm="none")
    with pytest.raises(AuthError, match="algorithm not allowed"):
        decode(unsigned)


def test_service_without_a_jwt_secret_refuses_every_token() -> None:
    with pytest.raises(AuthError, match="not accepted"):
        decode(token(), secret="")


# --- FastAPI ---------------------------------------------------------------------------------

PATIENT_CLINIC = {"clinic-b:p-9": "clinic-b", "clinic-a:p-1": "clinic-a"}


def make_app(keys: dict[str, tuple[str, str, bool]]) -> FastAPI:
    async def lookup(key_id: str) -> tuple[str, str, bool] | None:
        return keys.get(key_id)

    app = FastAPI()
    app.state.authenticator = build_authenticator(SETTINGS, lookup)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/patients/{patient_key}")
    async def patient(patient_key: str, principal: CurrentPrincipal) -> dict[str, str]:
        require_clinic(principal, PATIENT_CLINIC[patient_key])
        return {"patient_key": patient_key}

    @app.post("/clinics/{clinic_id}/pause")
    async def pause(clinic_id: str, principal: Operator) -> dict[str, str]:
        require_clinic(principal, clinic_id)
        return {"paused": clinic_id}

    @app.delete("/api-keys/{key_id}")
    async def revoke(key_id: str, principal: Admin) -> dict[str, str]:
        return {"revoked": key_id}

    return app


KeyFixture = tuple[str, dict[str, tuple[str, str, bool]]]


@pytest.fixture
def clinic_a_key() -> KeyFixture:
    plaintext, key_id, stored_hash = new_api_key()
    return plaintext, {key_id: ("clinic-a", stored_hash, True)}


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_request_without_credentials_gets_401_with_bearer_challenge() -> None:
    async with client(make_app({})) as http:
        response = await http.get("/patients/clinic-a:p-1")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "missing credentials" in response.json()["detail"]


async def test_health_probe_needs_no_credentials() -> None:
    async with client(make_app({})) as http:
        assert (await http.get("/healthz")).status_code == 200


async def test_api_key_reads_its_own_clinic(clinic_a_key: KeyFixture) -> None:
    plaintext, keys = clinic_a_key
    async with client(make_app(keys)) as http:
        response = await http.get("/patients/clinic-a:p-1", headers={"X-API-Key": plaintext})
    assert response.status_code == 200


async def test_api_key_for_another_clinic_gets_403_that_names_no_clinic(
    clinic_a_key: KeyFixture,
) -> None:
    plaintext, keys = clinic_a_key
    async with client(make_app(keys)) as http:
        response = await http.get("/patients/clinic-b:p-9", headers={"X-API-Key": plaintext})
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert "not scoped to the requested clinic" in detail
    assert "clinic-b" not in response.text and "clinic-a" not in response.text


async def test_unknown_and_revoked_keys_get_401(clinic_a_key: KeyFixture) -> None:
    plaintext, keys = clinic_a_key
    unknown, _, _ = new_api_key()
    revoked = {key_id: (clinic, h, False) for key_id, (clinic, h, _) in keys.items()}
    async with client(make_app(keys)) as http:
        response = await http.get("/patients/clinic-a:p-1", headers={"X-API-Key": unknown})
    assert (response.status_code, response.json()["detail"]) == (401, "invalid API key")
    async with client(make_app(revoked)) as http:
        response = await http.get("/patients/clinic-a:p-1", headers={"X-API-Key": plaintext})
    assert (response.status_code, response.json()["detail"]) == (401, "API key revoked")


async def test_viewer_token_cannot_use_an_operator_route() -> None:
    headers = {"Authorization": f"Bearer {token('viewer')}"}
    async with client(make_app({})) as http:
        response = await http.post("/clinics/clinic-a/pause", headers=headers)
    assert response.status_code == 403 and "operator role" in response.json()["detail"]


async def test_operator_token_acts_only_inside_its_clinic_scope() -> None:
    headers = {"Authorization": f"Bearer {token('operator')}"}
    async with client(make_app({})) as http:
        allowed = await http.post("/clinics/clinic-a/pause", headers=headers)
        refused = await http.post("/clinics/clinic-b/pause", headers=headers)
        not_admin = await http.delete("/api-keys/k1", headers=headers)
    assert (allowed.status_code, refused.status_code, not_admin.status_code) == (200, 403, 403)


async def test_admin_token_for_all_clinics_reaches_any_clinic() -> None:
    headers = {"Authorization": f"Bearer {token('admin', '*')}"}
    async with client(make_app({})) as http:
        assert (await http.get("/patients/clinic-b:p-9", headers=headers)).status_code == 200
        assert (await http.delete("/api-keys/k1", headers=headers)).status_code == 200


async def test_expired_token_over_http_says_why() -> None:
    stale = token(now=datetime.now(UTC) - timedelta(hours=1), ttl=timedelta(minutes=5))
    async with client(make_app({})) as http:
        response = await http.get(
            "/patients/clinic-a:p-1", headers={"Authorization": f"Bearer {stale}"}
        )
    assert response.status_code == 401 and response.json()["detail"] == "token expired"


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({"Authorization": "Basic dXNlcjpwdw=="}, "unsupported authorization scheme"),
        ({"Authorization": "Bearer x", "X-API-Key": "rvk_x"}, "not both"),
    ],
)
async def test_ambiguous_or_foreign_credentials_are_refused(
    headers: dict[str, str], detail: str
) -> None:
    async with client(make_app({})) as http:
        response = await http.get("/patients/clinic-a:p-1", headers=headers)
    assert response.status_code == 401 and detail in response.json()["detail"]


async def test_service_without_key_lookup_refuses_api_keys(clinic_a_key: KeyFixture) -> None:
    plaintext, _ = clinic_a_key
    app = make_app({})
    app.state.authenticator = build_authenticator(SETTINGS)
    async with client(app) as http:
        response = await http.get("/patients/clinic-a:p-1", headers={"X-API-Key": plaintext})
    assert response.status_code == 401 and "not accepted" in response.json()["detail"]


async def test_app_without_an_authenticator_fails_closed() -> None:
    app = make_app({})
    del app.state.authenticator
    async with client(app) as http:
        with pytest.raises(RuntimeError, match="authenticator is not set"):
            await http.get("/patients/clinic-a:p-1")
