"""Staff tokens from the practice's identity provider, checked against its JWKS served by a real
local HTTP server with keys generated here: issuer, audience, algorithm allow-list, expiry with
clock skew, key rotation by kid; the maximum lifetime, revocation by jti, and HS256 refused in
production."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import jwt
import pytest

from shared.auth import Authenticator, AuthError, build_authenticator, issue_staff_token
from shared.config import AuthSettings, RevisitSettings
from tests.unit.jwks_server import AUDIENCE, Issuer, running_issuer

SECRET = "unit-test-secret-that-is-long-enough-0123456789"


@pytest.fixture(scope="module")
def provider() -> Iterator[Issuer]:
    with running_issuer() as issuer:
        issuer.add_key("k1", "RS256")
        issuer.add_key("e1", "ES256")
        yield issuer


def settings(issuer: Issuer, **changes: object) -> AuthSettings:
    values: dict[str, object] = {
        "revisit_jwt_secret": SECRET,
        "revisit_oidc_issuer": issuer.issuer,
        "revisit_oidc_audience": AUDIENCE,
    } | changes
    return AuthSettings(**values)  # type: ignore[arg-type]


def authenticator(issuer: Issuer, profile: str = "dev", **changes: object) -> Authenticator:
    return build_authenticator(settings(issuer, **changes), profile=profile)


async def who(auth: Authenticator, token: str) -> object:
    return await auth.authenticate(f"Bearer {token}", None)


async def refused(auth: Authenticator, token: str) -> str:
    with pytest.raises(AuthError) as error:
        await who(auth, token)
    assert error.value.status_code == 401
    assert token not in error.value.detail
    return error.value.detail


@pytest.mark.parametrize("kid", ["k1", "e1"])
async def test_a_provider_token_signed_with_a_published_key_is_accepted(
    provider: Issuer, kid: str
) -> None:
    principal = await who(authenticator(provider), provider.token(kid))
    assert principal == principal.__class__("staff", "nurse-7", "operator", frozenset({"clinic-a"}))


async def test_clinics_may_come_as_a_space_separated_claim(provider: Issuer) -> None:
    token = provider.token(revisit_clinics="clinic-a clinic-b", revisit_role="viewer")
    principal = await who(authenticator(provider), token)
    assert principal.clinics == frozenset({"clinic-a", "clinic-b"})  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"iss": "https://impostor.example"}, "wrong issuer"),
        ({"aud": "another-app"}, "wrong audience"),
        ({"iat": int(time.time()) - 4000, "exp": int(time.time()) - 3600}, "token expired"),
        ({"nbf": int(time.time()) + 600}, "not yet valid"),
        ({"jti": None}, "no jti claim"),
        ({"revisit_role": "superuser"}, "unknown role"),
        ({"revisit_role": "operator", "revisit_clinics": "*"}, "only an admin"),
    ],
)
async def test_what_the_provider_did_not_vouch_for_is_refused(
    provider: Issuer, claims: dict[str, object], words: str
) -> None:
    assert words in await refused(authenticator(provider), provider.token(**claims))


async def test_clock_skew_within_the_leeway_is_tolerated_and_beyond_it_is_not(
    provider: Issuer,
) -> None:
    now = int(time.time())
    just_expired = provider.token(iat=now - 300, exp=now - 20)
    assert await who(authenticator(provider, revisit_token_leeway_s=60), just_expired)
    assert "expired" in await refused(
        authenticator(provider, revisit_token_leeway_s=5), just_expired
    )


async def test_algorithms_off_the_allow_list_are_refused(provider: Issuer) -> None:
    rs_only = authenticator(provider, revisit_oidc_algorithms="RS256")
    assert "algorithm not allowed" in await refused(rs_only, provider.token("e1"))
    claims = jwt.decode(provider.token(), options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})
    assert "algorithm not allowed" in await refused(authenticator(provider), unsigned)
    # HS256 even if the allow-list names it: the provider's keys are never HMAC secrets
    hs_listed = authenticator(
        provider, revisit_oidc_algorithms="RS256,HS256", revisit_jwt_secret=""
    )
    forged = jwt.encode(claims, "public-key-bytes-as-a-secret-0123456789", algorithm="HS256")
    assert "not accepted" in await refused(hs_listed, forged)


async def test_a_key_the_provider_does_not_publish_is_refused(provider: Issuer) -> None:
    provider.add_key("hidden", "RS256", publish=False)
    assert "does not publish" in await refused(authenticator(provider), provider.token("hidden"))


async def test_rotated_keys_are_fetched_again_by_kid_and_the_set_is_cached() -> None:
    with running_issuer() as issuer:
        issuer.add_key("old")
        auth = authenticator(issuer)
        for _ in range(3):
            assert await who(auth, issuer.token("old"))
        assert issuer.jwks_reads == 1  # cached between requests
        issuer.rotate("new")
        # a new kid past the refetch floor reads the set again, once
        auth._keys._min_refetch_s = 0  # type: ignore[union-attr]
        assert await who(auth, issuer.token("new"))
        assert issuer.jwks_reads == 2
        assert await who(auth, issuer.token("new"))
        assert issuer.jwks_reads == 2
        # unknown kids within the floor do not hammer the provider
        auth._keys._min_refetch_s = 60  # type: ignore[union-attr]
        issuer.add_key("forged", publish=False)
        for _ in range(3):
            assert "does not publish" in await refused(auth, issuer.token("forged"))
        assert issuer.jwks_reads == 2


async def test_a_token_living_longer_than_the_maximum_is_refused_whoever_signed_it(
    provider: Issuer,
) -> None:
    auth = authenticator(provider, revisit_token_max_hours=1)
    long_lived = provider.token(ttl_s=2 * 3600)
    assert "longer than the maximum 1 h" in await refused(auth, long_lived)
    hs = issue_staff_token(SECRET, subject="a", role="admin", clinics="*", ttl=timedelta(hours=2))
    assert "longer than the maximum" in await refused(auth, hs)
    assert await who(auth, provider.token(ttl_s=3000))


async def test_a_revoked_jti_is_refused(provider: Issuer) -> None:
    token = provider.token()
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    seen: list[str] = []

    async def revoked(asked: str) -> bool:
        seen.append(asked)
        return asked == jti

    auth = build_authenticator(settings(provider), revoked=revoked)
    assert await refused(auth, token) == "token revoked"
    assert await who(auth, provider.token())
    assert seen[0] == jti and len(seen) == 2


async def test_hs256_dev_tokens_work_in_dev_and_are_refused_in_production(
    provider: Issuer,
) -> None:
    hs = issue_staff_token(SECRET, subject="a", role="admin", clinics="*", ttl=timedelta(hours=1))
    assert await who(authenticator(provider, "dev"), hs)
    words = await refused(authenticator(provider, "production"), hs)
    assert "refused in production" in words
    # the provider's tokens are what production takes
    assert await who(authenticator(provider, "production"), provider.token())


def production(**env: str) -> RevisitSettings:
    auth = AuthSettings(**env)  # type: ignore[arg-type]
    return RevisitSettings(
        revisit_profile="production",
        revisit_metrics_token="m" * 32,
        auth=auth,
        db={"database_url": "postgresql+asyncpg://x/y"},  # type: ignore[arg-type]
        kafka={"kafka_bootstrap_servers": "k:9092", "kafka_allow_plaintext": True},  # type: ignore[arg-type]
        telemetry={"revisit_pseudonym_key": "p" * 32},  # type: ignore[arg-type]
    )


def test_production_settings_refuse_the_hs256_secret_and_need_an_identity_provider() -> None:
    oidc = {"revisit_oidc_issuer": "https://id.clinic.example", "revisit_oidc_audience": "ops"}
    assert production(**oidc).auth.revisit_oidc_issuer
    with pytest.raises(ValueError, match=r"REVISIT_JWT_SECRET .* is for the dev stack only"):
        production(revisit_jwt_secret=SECRET, **oidc)
    with pytest.raises(ValueError, match="needs REVISIT_OIDC_ISSUER"):
        production()
    with pytest.raises(ValueError, match="https://"):
        production(revisit_oidc_issuer="http://id.clinic.example", revisit_oidc_audience="ops")
    with pytest.raises(ValueError, match="at most 24"):
        production(revisit_token_max_hours="48", **oidc)


async def test_known_keys_outlive_a_provider_outage_and_unknown_ones_do_not() -> None:
    with running_issuer() as issuer:
        issuer.add_key("k1")
        auth = authenticator(issuer, revisit_oidc_jwks_ttl_s=0)  # re-read at every request
        assert await who(auth, issuer.token("k1"))
        keys = auth._keys  # type: ignore[attr-defined]
        keys._jwks_url = "http://127.0.0.1:9/keys"  # the provider stops answering
        assert await who(auth, issuer.token("k1"))
        issuer.add_key("k2")
        keys._min_refetch_s = 0
        assert "could not be read" in await refused(auth, issuer.token("k2"))
