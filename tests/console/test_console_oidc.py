"""Production sign-in against a real (local) OpenID Connect provider: authorization code with
PKCE, state and nonce, the ID token checked against the provider's JWKS; and every way a
sign-in must fail."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from services.console.app import create_app
from services.console.repository.sessions import SESSION_COOKIE
from shared.auth import CurrentPrincipal, build_authenticator, require_clinic
from shared.config import AuthSettings
from tests.console.conftest import BASE, settings
from tests.console.fakes import FakeTokens, fake_apis
from tests.console.oidc_provider import (
    API_AUDIENCE,
    CLIENT_ID,
    CLIENT_SECRET,
    Provider,
    running_provider,
)
from tests.console.world import A, build_world


@dataclass
class SignIn:
    console: httpx.AsyncClient
    provider: Provider

    async def run(self, next_path: str = "/escalations") -> httpx.Response:
        """Start at the console, visit the provider, come back: the console's last answer."""
        start = await self.console.get("/sign-in/oidc", params={"next": next_path})
        assert start.status_code == 303, start.text
        async with httpx.AsyncClient(trust_env=False) as outside:
            at_provider = await outside.get(start.headers["location"])
        assert at_provider.status_code == 302, at_provider.text
        back = urlparse(at_provider.headers["location"])
        return await self.console.get(f"{back.path}?{back.query}")


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        yield running


@pytest.fixture
async def sign_in(provider: Provider) -> AsyncIterator[SignIn]:
    provider.misbehave = ""
    provider.claims = {"revisit_role": "operator", "revisit_clinics": [A]}
    app = create_app(
        settings(
            dev_sign_in=False,
            oidc_issuer=provider.issuer,
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=CLIENT_SECRET,
        ),
        apis=fake_apis(build_world()),
        tokens=FakeTokens(),
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield SignIn(client, provider)


async def test_a_person_signs_in_with_the_identity_provider_using_pkce(sign_in: SignIn) -> None:
    start = await sign_in.console.get("/sign-in/oidc")
    query = parse_qs(urlparse(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == [f"{BASE}/auth/callback"] and "openid" in query["scope"][0]
    assert query["state"][0] and query["nonce"][0] and len(query["code_challenge"][0]) == 43
    done = await sign_in.run("/inbox")
    assert done.status_code == 303 and done.headers["location"] == "/inbox"
    assert "revisit_console=" in done.headers["set-cookie"]
    assert sign_in.provider.token_requests[-1]["code_verifier"]
    page = await sign_in.console.get("/escalations")
    assert page.status_code == 200 and "staff-42 · operator" in page.text


@pytest.mark.parametrize(
    ("misbehave", "words"),
    [
        ("nonce", "does not answer this sign-in (nonce)"),
        ("audience", "issued for another application"),
        ("expired", "has expired"),
        ("issuer", "comes from another issuer"),
        ("unknown_kid", "a key the provider does not publish"),
        ("stranger_key", "is not valid (InvalidSignatureError)"),
        ("none_alg", "signing algorithm is not accepted"),
    ],
)
async def test_a_wrong_id_token_is_refused(sign_in: SignIn, misbehave: str, words: str) -> None:
    sign_in.provider.misbehave = misbehave
    refused = await sign_in.run()
    assert refused.status_code == 401 and words in refused.text
    assert "revisit_console=" not in refused.headers.get("set-cookie", "")
    assert (await sign_in.console.get("/escalations")).status_code == 303  # still signed out


async def test_a_person_without_a_revisit_role_is_not_signed_in(sign_in: SignIn) -> None:
    sign_in.provider.claims = {"revisit_clinics": [A]}
    refused = await sign_in.run()
    assert refused.status_code == 401 and "gives no Revisit role" in refused.text


async def test_a_callback_that_this_browser_did_not_start_is_refused(sign_in: SignIn) -> None:
    await sign_in.console.get("/sign-in/oidc")  # this browser's own sign-in, never finished
    forged = await sign_in.console.get("/auth/callback", params={"code": "x", "state": "forged"})
    assert forged.status_code == 401 and "does not match" in forged.text
    sign_in.console.cookies.clear()
    nothing = await sign_in.console.get("/auth/callback", params={"code": "x", "state": "y"})
    assert nothing.status_code == 400 and "expired" in nothing.text


async def test_the_provider_refuses_a_code_without_the_right_pkce_verifier(
    sign_in: SignIn,
) -> None:
    start = await sign_in.console.get("/sign-in/oidc")
    async with httpx.AsyncClient(trust_env=False) as outside:
        at_provider = await outside.get(start.headers["location"])
        code = parse_qs(urlparse(at_provider.headers["location"]).query)["code"][0]
        stolen = await outside.post(
            f"{sign_in.provider.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": CLIENT_ID,
                "redirect_uri": f"{BASE}/auth/callback",
                "code_verifier": "guessed" * 8,
            },
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
    assert stolen.status_code == 400  # a stolen code is useless without the verifier


async def test_the_dev_sign_in_is_off_when_the_provider_is_configured(sign_in: SignIn) -> None:
    page = await sign_in.console.get("/sign-in")
    assert "Sign in with your organisation" in page.text and "Dev stack" not in page.text
    refused = await sign_in.console.post("/sign-in", data={"subject": "x"})
    assert refused.status_code == 404


async def test_the_console_forwards_the_person_own_access_token_which_the_services_accept(
    provider: Provider,
) -> None:
    """No shared secret anywhere: the console signs nothing, and what it forwards passes the
    services' own validation (the same shared/auth code every service runs, here in its
    production profile, which refuses HS256 tokens)."""
    provider.misbehave = ""
    provider.claims = {"revisit_role": "operator", "revisit_clinics": [A]}
    app = create_app(
        settings(
            dev_sign_in=False,
            oidc_issuer=provider.issuer,
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=CLIENT_SECRET,
        ),
        apis=fake_apis(build_world()),
    )
    assert app.state.console.tokens is None  # the console holds no signing secret
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            done = await SignIn(client, provider).run("/escalations")
            assert done.status_code == 303, done.text
            page = await client.get("/escalations")
            assert page.status_code == 200 and "staff-42 · operator" in page.text
            cookie = client.cookies.get(SESSION_COOKIE)
    request = Request(
        {"type": "http", "headers": [(b"cookie", f"{SESSION_COOKIE}={cookie}".encode())]}
    )
    session = app.state.console.sessions.load(request)
    assert session is not None
    forwarded = session.token
    assert jwt.get_unverified_header(forwarded)["alg"] == "RS256"

    service = FastAPI()
    service.state.authenticator = build_authenticator(
        AuthSettings(revisit_oidc_issuer=provider.issuer, revisit_oidc_audience=API_AUDIENCE),
        profile="production",
    )

    @service.get("/clinics/{clinic_id}/cases")
    async def cases(clinic_id: str, principal: CurrentPrincipal) -> dict[str, object]:
        require_clinic(principal, clinic_id)
        return {"subject": principal.subject, "role": principal.role}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service), base_url="http://escalation"
    ) as services:
        bearer = {"Authorization": f"Bearer {forwarded}"}
        mine = await services.get(f"/clinics/{A}/cases", headers=bearer)
        assert mine.status_code == 200 and mine.json() == {
            "subject": "staff-42",
            "role": "operator",
        }
        assert (await services.get("/clinics/elsewhere/cases", headers=bearer)).status_code == 403
        # an HS256 token with the same claims is what production refuses
        forged = jwt.encode(
            {**jwt.decode(forwarded, options={"verify_signature": False})},
            "a-dev-secret-that-is-long-enough-0123456789",
            algorithm="HS256",
        )
        refused = await services.get(
            f"/clinics/{A}/cases", headers={"Authorization": f"Bearer {forged}"}
        )
        assert refused.status_code == 401 and "refused in production" in refused.json()["detail"]
