"""Settings of the staff console (``REVISIT_CONSOLE_*``, plus the platform's profile, host, port,
staff-token secret and log level), read in the composition root only.

The console has no database and no broker: it calls the other services' APIs. In production it
refuses the dev sign-in and the dev token secret, needs an OIDC issuer and client, an HTTPS public
URL and a real sealing secret.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.config import AuthSettings, TelemetrySettings

CONSOLE_PORT = 8008
_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "dev", "password", "please-change"}
HTTP_URL = r"^https?://[^\s/]+(/\S*)?$"


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REVISIT_CONSOLE_", extra="ignore", populate_by_name=True
    )

    profile: Literal["dev", "test", "production"] = Field(
        default="dev", validation_alias="REVISIT_PROFILE"
    )
    host: str = Field(default="127.0.0.1", validation_alias="REVISIT_HOST")
    port: int | None = Field(default=None, ge=1, le=65535, validation_alias="REVISIT_PORT")

    # Where staff open the console (links in pages, the OIDC redirect, Secure cookies).
    public_url: str = Field(default="", max_length=300)
    # Seals the session cookies and the patients' references in URLs (at least 32 characters in
    # production; empty in dev: a random one per process, sessions end with it).
    secret: str = Field(default="", description="sealing secret")
    dev_sign_in: bool = False  # the sign-in page that issues dev tokens (never in production)
    default_clinic: str = Field(default="", max_length=64)  # for staff scoped to every clinic

    segmenter_url: str = Field(default="http://127.0.0.1:8002", pattern=HTTP_URL)
    sequencer_url: str = Field(default="http://127.0.0.1:8003", pattern=HTTP_URL)
    messenger_url: str = Field(default="http://127.0.0.1:8004", pattern=HTTP_URL)
    escalation_url: str = Field(default="http://127.0.0.1:8005", pattern=HTTP_URL)
    metrics_url: str = Field(default="http://127.0.0.1:8006", pattern=HTTP_URL)
    grafana_url: str = Field(default="", max_length=300)  # the dashboards' links; empty: none
    api_timeout_s: float = Field(default=5.0, gt=0, le=60)

    session_hours: float = Field(default=10.0, gt=0, le=24)
    refresh_seconds: int = Field(default=5, ge=1, le=300)  # the queue's live updates

    # Production sign-in: OpenID Connect, authorization code with PKCE.
    oidc_issuer: str = Field(default="", max_length=300)
    oidc_client_id: str = Field(default="", max_length=200)
    oidc_client_secret: str = Field(default="", description="empty: a public client (PKCE only)")
    oidc_scopes: str = "openid profile email"
    oidc_role_claim: str = "revisit_role"
    oidc_clinics_claim: str = "revisit_clinics"

    auth: AuthSettings = Field(default_factory=AuthSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    @model_validator(mode="after")
    def _production_is_locked_down(self) -> ConsoleSettings:
        if self.profile != "production":
            return self
        if self.secret.strip().lower() in _PLACEHOLDERS or len(self.secret) < 32:
            raise ValueError("REVISIT_CONSOLE_SECRET must be a real secret of 32+ characters")
        if self.dev_sign_in:
            raise ValueError("REVISIT_CONSOLE_DEV_SIGN_IN is refused in production")
        if not (self.oidc_issuer and self.oidc_client_id):
            raise ValueError(
                "production sign-in needs REVISIT_CONSOLE_OIDC_ISSUER and _OIDC_CLIENT_ID"
            )
        if urlparse(self.public_url).scheme != "https":
            raise ValueError("REVISIT_CONSOLE_PUBLIC_URL must be an https:// URL in production")
        if self.auth.revisit_jwt_secret:
            raise ValueError(
                "REVISIT_JWT_SECRET is for the dev stack only: in production the console forwards "
                "each person's access token from the identity provider; unset it"
            )
        return self

    @property
    def listen_port(self) -> int:
        return self.port or CONSOLE_PORT

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.listen_port}"

    @property
    def secure_cookies(self) -> bool:
        """Secure cookies everywhere but plain HTTP on this machine (the dev stack)."""
        parsed = urlparse(self.base_url)
        local = parsed.hostname in ("127.0.0.1", "localhost", "::1")
        return parsed.scheme == "https" or not local
