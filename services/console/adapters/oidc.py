"""Signing in with the practice's identity provider: OpenID Connect, authorization code flow
with PKCE (S256), state and nonce, the code exchanged at the token endpoint, and the ID token
checked against the issuer's published keys (JWKS): signature, issuer, audience, expiry, nonce.
The person's access token from the same exchange is what the console forwards to the services,
which check it themselves (``shared/jwks.py``): the console holds no signing secret for them.

Only asymmetric algorithms are accepted (an HS256 ID token would be signed with the client
secret, which a public client does not have). Errors say what failed, never a token or claim.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode, urlparse

import httpx
import jwt

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
LEEWAY_S = 60
KEYS_TTL_S = 3600.0


class OidcError(Exception):
    """Sign-in failed; the message is for the person signing in and carries no token."""


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class Transaction:
    """What the console remembers between sending the person away and their return (sealed in a
    short-lived cookie)."""

    state: str
    nonce: str
    verifier: str
    next_path: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Transaction:
        return cls(
            str(doc["state"]), str(doc["nonce"]), str(doc["verifier"]), str(doc["next_path"])
        )


@dataclass(frozen=True)
class SignedIn:
    """Who the provider signed in (the ID token's claims) and the access token the console
    forwards to the services for them (the services validate it against the same JWKS)."""

    claims: dict[str, Any]
    access_token: str = field(repr=False)


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _secure(url: str) -> bool:
    parsed = urlparse(url)
    local = parsed.hostname in ("127.0.0.1", "localhost", "::1")
    return parsed.scheme == "https" or (parsed.scheme == "http" and local)


class OidcClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        scopes: str,
        redirect_uri: str,
    ) -> None:
        self._http = http
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.scopes = scopes if "openid" in scopes.split() else f"openid {scopes}"
        self.redirect_uri = redirect_uri
        self._discovery: Discovery | None = None
        self._keys: dict[str, Any] = {}
        self._keys_at = 0.0

    async def _json(self, method: str, url: str, **kw: Any) -> dict[str, Any]:
        if not _secure(url):
            raise OidcError("the identity provider must be reached over HTTPS")
        try:
            response = await self._http.request(method, url, **kw)
        except httpx.HTTPError:
            raise OidcError("the identity provider did not answer") from None
        if response.status_code >= 400:
            raise OidcError(f"the identity provider answered {response.status_code}")
        try:
            doc = response.json()
        except ValueError:
            raise OidcError("the identity provider's answer is not JSON") from None
        if not isinstance(doc, dict):
            raise OidcError("the identity provider's answer is not a JSON object")
        return doc

    async def discovery(self) -> Discovery:
        if self._discovery is None:
            doc = await self._json("GET", f"{self.issuer}/.well-known/openid-configuration")
            if str(doc.get("issuer", "")).rstrip("/") != self.issuer:
                raise OidcError("the discovery document names another issuer")
            try:
                found = Discovery(
                    issuer=str(doc["issuer"]),
                    authorization_endpoint=str(doc["authorization_endpoint"]),
                    token_endpoint=str(doc["token_endpoint"]),
                    jwks_uri=str(doc["jwks_uri"]),
                )
            except KeyError as exc:
                raise OidcError(f"the discovery document has no {exc.args[0]}") from None
            methods = doc.get("code_challenge_methods_supported")
            if isinstance(methods, list) and "S256" not in methods:
                raise OidcError("the identity provider does not support PKCE with S256")
            self._discovery = found
        return self._discovery

    async def start(self, next_path: str) -> tuple[str, Transaction]:
        """Where to send the person, and what to remember until they come back."""
        found = await self.discovery()
        tx = Transaction(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            verifier=secrets.token_urlsafe(48),
            next_path=next_path,
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self.scopes,
                "state": tx.state,
                "nonce": tx.nonce,
                "code_challenge": pkce_challenge(tx.verifier),
                "code_challenge_method": "S256",
            }
        )
        sep = "&" if "?" in found.authorization_endpoint else "?"
        return f"{found.authorization_endpoint}{sep}{query}", tx

    async def finish(self, params: Mapping[str, str], tx: Transaction) -> SignedIn:
        """The validated ID token's claims and the person's access token, from the provider's
        redirect back to us."""
        if not hmac.compare_digest(params.get("state", ""), tx.state):
            raise OidcError("this sign-in does not match the one started here; start again")
        if params.get("error"):
            raise OidcError("the identity provider did not sign you in")
        code = params.get("code", "")
        if not code:
            raise OidcError("the identity provider sent no authorization code")
        found = await self.discovery()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": tx.verifier,
            "client_id": self.client_id,
        }
        auth = (self.client_id, self._client_secret) if self._client_secret else None
        tokens = await self._json("POST", found.token_endpoint, data=form, auth=auth)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the identity provider sent no ID token")
        access_token = tokens.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            # The services are called with the person's own access token, never one of ours.
            raise OidcError("the identity provider sent no access token")
        return SignedIn(await self.validate(id_token, tx.nonce), access_token)

    async def _key(self, kid: str | None) -> Any:
        stale = bool(self._keys) and time.monotonic() - self._keys_at > KEYS_TTL_S
        if stale or not self._keys or (kid is not None and kid not in self._keys):
            # Keys rotate: an unknown kid means fetching the set again, once.
            found = await self.discovery()
            jwks = await self._json("GET", found.jwks_uri)
            try:
                keyset = jwt.PyJWKSet.from_dict(jwks)
            except jwt.PyJWTError:
                raise OidcError("the identity provider's keys cannot be read") from None
            self._keys = {str(k.key_id): k for k in keyset.keys if k.key_id}
            self._keys_at = time.monotonic()
        if kid is None and len(self._keys) == 1:  # a provider with one key may name none
            return next(iter(self._keys.values()))
        if kid not in self._keys:
            raise OidcError("the ID token is signed with a key the provider does not publish")
        return self._keys[kid]

    async def validate(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise OidcError("the ID token is malformed") from None
        if header.get("alg") not in ALGORITHMS:
            raise OidcError("the ID token's signing algorithm is not accepted")
        key = await self._key(header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=key.key,
                algorithms=[str(header["alg"])],
                audience=self.client_id,
                issuer=(await self.discovery()).issuer,
                leeway=LEEWAY_S,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "nonce"]},
            )
        except jwt.ExpiredSignatureError:
            raise OidcError("the ID token has expired") from None
        except jwt.InvalidAudienceError:
            raise OidcError("the ID token was issued for another application") from None
        except jwt.InvalidIssuerError:
            raise OidcError("the ID token comes from another issuer") from None
        except jwt.PyJWTError as exc:
            raise OidcError(f"the ID token is not valid ({type(exc).__name__})") from None
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OidcError("the ID token does not answer this sign-in (nonce)")
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.client_id:
            raise OidcError("the ID token was issued to another party (azp)")
        return claims
