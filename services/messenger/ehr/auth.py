"""Where the bearer token for an EHR's FHIR API comes from: nowhere (``none``), a static token,
OAuth2 client credentials with a secret, or SMART Backend Services (a signed JWT assertion).

Tokens are cached until shortly before they expire and refreshed by one caller at a time. A
secret is read from the environment variable the connection names, only when needed, and
never logged or put in an error message (errors name the variable or the OAuth2 error code).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import httpx

from services.messenger.ehr.domain import smart
from services.messenger.ehr.domain.connection import AuthKind, Connection
from services.messenger.ehr.domain.smart import AccessToken, TokenRefused

Now = Callable[[], datetime]


def wall_clock() -> datetime:
    # Tokens and assertions are judged by the authorisation server's own clock, so they use
    # real time, never the controlled clock a simulation moves months ahead.
    return datetime.now(UTC)


class AuthSetupError(Exception):
    """The connection names a secret that is not there (the message names the variable)."""


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


class TokenSource(abc.ABC):
    kind: AuthKind

    @abc.abstractmethod
    async def authorization(self) -> str | None:
        """The Authorization header value, or None when the EHR wants none."""

    def invalidate(self) -> None:
        """Forget a cached token (the EHR answered 401 with it)."""
        return None


class NoAuth(TokenSource):
    kind = AuthKind.none

    async def authorization(self) -> str | None:
        return None


class StaticToken(TokenSource):
    kind = AuthKind.static

    def __init__(self, token: str) -> None:
        self._token = token

    async def authorization(self) -> str | None:
        return f"Bearer {self._token}"


class _CachedToken(TokenSource):
    def __init__(self, http: httpx.AsyncClient, now: Now) -> None:
        self._http = http
        self._now = now
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()
        self.requests = 0  # how many tokens were fetched (tests check the cache with it)

    def invalidate(self) -> None:
        self._token = None

    async def authorization(self) -> str | None:
        token = self._token
        if token is None or not token.usable(self._now()):
            async with self._lock:
                token = self._token
                if token is None or not token.usable(self._now()):
                    token = self._token = await self._fetch()
                    self.requests += 1
        return f"Bearer {token.value}"

    @abc.abstractmethod
    async def _fetch(self) -> AccessToken: ...

    async def _post(self, url: str, form: dict[str, str], **kw: object) -> AccessToken:
        try:
            response = await self._http.post(
                url,
                data=form,
                headers={"Accept": "application/json"},
                **kw,  # type: ignore[arg-type]
            )
        except httpx.HTTPError as exc:
            raise TokenRefused(f"token_endpoint_unreachable:{type(exc).__name__}") from None
        return smart.read_token(response.status_code, _json(response), self._now())


class ClientCredentials(_CachedToken):
    kind = AuthKind.client_credentials

    def __init__(
        self,
        http: httpx.AsyncClient,
        now: Now,
        *,
        token_url: str,
        client_id: str,
        secret: str,
        scope: str,
    ) -> None:
        super().__init__(http, now)
        self._url, self._client_id, self._secret, self._scope = token_url, client_id, secret, scope

    async def _fetch(self) -> AccessToken:
        form = {"grant_type": "client_credentials", "scope": self._scope}
        return await self._post(self._url, form, auth=(self._client_id, self._secret))


class SmartBackend(_CachedToken):
    kind = AuthKind.smart_backend

    def __init__(
        self,
        http: httpx.AsyncClient,
        now: Now,
        *,
        base_url: str,
        client_id: str,
        private_key_pem: str,
        algorithm: str,
        key_id: str | None,
        scope: str,
        token_url: str | None = None,
    ) -> None:
        super().__init__(http, now)
        self._base, self._client_id, self._key = base_url.rstrip("/"), client_id, private_key_pem
        self._algorithm, self._key_id, self._scope = algorithm, key_id, scope
        self.token_url = token_url

    async def discover(self) -> str:
        """The token endpoint from ``[base]/.well-known/smart-configuration``."""
        if self.token_url:
            return self.token_url
        url = f"{self._base}/.well-known/smart-configuration"
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise TokenRefused(f"smart_configuration_unreachable:{type(exc).__name__}") from None
        if response.status_code != 200:
            raise TokenRefused("smart_configuration_missing", response.status_code)
        self.token_url = smart.token_endpoint(_json(response))
        return self.token_url

    async def _fetch(self) -> AccessToken:
        token_url = await self.discover()
        assertion = smart.client_assertion(
            client_id=self._client_id,
            token_url=token_url,
            private_key_pem=self._key,
            algorithm=self._algorithm,
            key_id=self._key_id,
            now=self._now(),
        )
        return await self._post(token_url, smart.assertion_form(assertion, self._scope))


def _secret(secrets: Mapping[str, str], name: str | None) -> str:
    value = secrets.get(name or "", "")
    if not value.strip():
        raise AuthSetupError(f"environment variable {name} is not set")
    return value


def token_source(
    connection: Connection,
    http: httpx.AsyncClient,
    secrets: Mapping[str, str],
    now: Now = wall_clock,
) -> TokenSource:
    auth = connection.settings.auth
    if auth.kind is AuthKind.static:
        return StaticToken(_secret(secrets, auth.token_env).strip())
    if auth.kind is AuthKind.client_credentials:
        return ClientCredentials(
            http,
            now,
            token_url=str(auth.token_url),
            client_id=str(auth.client_id),
            secret=_secret(secrets, auth.secret_env),
            scope=auth.scope,
        )
    if auth.kind is AuthKind.smart_backend:
        hint = connection.capabilities.token_url if connection.capabilities else None
        return SmartBackend(
            http,
            now,
            base_url=connection.base_url,
            client_id=str(auth.client_id),
            private_key_pem=_secret(secrets, auth.key_env),
            algorithm=auth.algorithm.value,
            key_id=auth.key_id,
            scope=auth.scope,
            token_url=auth.token_url or hint,
        )
    return NoAuth()
