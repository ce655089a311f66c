"""Settings blocks, read from the environment in each composition root (never at import).

Secrets have no working default outside the embedded dev profile: a service started with
``REVISIT_PROFILE=production`` refuses a missing or placeholder secret at start-up.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_NAMES: tuple[str, ...] = (
    "ingest",
    "segmenter",
    "sequencer",
    "messenger",
    "escalation",
    "metrics",
)

DEFAULT_PORTS: dict[str, int] = {
    "ingest": 8001,
    "segmenter": 8002,
    "sequencer": 8003,
    "messenger": 8004,
    "escalation": 8005,
    "metrics": 8006,
}


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL, e.g. postgresql+asyncpg://user:pw@host:5432/revisit",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_echo: bool = False


class KafkaSettings(BaseSettings):
    # A refused setting's message must not carry the SASL password it was given with.
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    kafka_bootstrap_servers: str = Field(default="", description="host:port[,host:port]")
    kafka_partitions: int = Field(default=6, ge=1, le=1024)
    kafka_replication_factor: int = Field(default=1, ge=1, le=5)
    # Real Kafka supports the idempotent producer; the embedded broker does not
    # (docs/kafka-notes.md).
    kafka_enable_idempotence: bool = False
    kafka_max_poll_records: int = Field(default=500, ge=1, le=5000)
    # How long a fetch may wait for data. Kafka answers a waiting fetch as soon as data comes;
    # the embedded broker only at the end of the wait, so at the client's default (500 ms)
    # every hop of the pipeline cost ~200 ms (median) on it (~22 ms at 100). The idle cost is
    # one empty fetch per consumer per wait, which the broker pays in CPU.
    kafka_fetch_max_wait_ms: int = Field(default=100, ge=1, le=10_000)
    kafka_session_timeout_ms: int = Field(default=6000, ge=1000)
    kafka_heartbeat_interval_ms: int = Field(default=1000, ge=100)
    # How long dead letters are kept for a person to inspect and replay (`revisit dlq`).
    kafka_dlq_retention_days: int = Field(default=30, ge=1, le=3650)

    # Transport security, honoured by every client (shared.kafka builds them all). The events
    # carry patient keys and EHR facts: production refuses a broker without TLS unless
    # KAFKA_ALLOW_PLAINTEXT says the network itself is trusted.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["", "SCRAM-SHA-256", "SCRAM-SHA-512"] = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = Field(default="", repr=False)
    # PEM files: the CA that signed the brokers' certificates (empty: the system's CAs), and a
    # client certificate and key when the brokers ask for one (mutual TLS).
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    kafka_allow_plaintext: bool = False

    @property
    def uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @model_validator(mode="after")
    def _complete_security(self) -> KafkaSettings:
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not self.kafka_sasl_mechanism:
            raise ValueError(
                f"KAFKA_SASL_MECHANISM must be SCRAM-SHA-256 or SCRAM-SHA-512 with "
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
            )
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are needed for SASL")
        if not sasl and self.kafka_sasl_mechanism:
            raise ValueError(
                "KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL is "
                f"{self.kafka_security_protocol} (SASL_SSL or SASL_PLAINTEXT use it)"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together")
        if not self.uses_tls and (self.kafka_ssl_cafile or self.kafka_ssl_certfile):
            raise ValueError(
                "KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL is "
                f"{self.kafka_security_protocol} (SSL or SASL_SSL use them)"
            )
        return self

    def refuse_plaintext_in(self, profile: str) -> None:
        """Production talks to the broker over TLS unless told the network is trusted."""
        if profile == "production" and not self.uses_tls and not self.kafka_allow_plaintext:
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL is {self.kafka_security_protocol}: production needs "
                "SSL or SASL_SSL (or KAFKA_ALLOW_PLAINTEXT=true on a network you trust)"
            )


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    # HS256 staff tokens: the dev stack's and the tests' (refused in production).
    revisit_jwt_secret: str = Field(default="", description="HMAC secret for dev staff JWTs")
    revisit_jwt_issuer: str = "revisit"
    revisit_jwt_audience: str = "revisit-ops"
    # Staff tokens from the practice's identity provider (OpenID Connect), checked against its
    # published keys. Empty issuer: none accepted.
    revisit_oidc_issuer: str = Field(default="", max_length=300)
    revisit_oidc_audience: str = Field(default="", max_length=300)
    revisit_oidc_jwks_url: str = Field(default="", max_length=500, description="empty: discovery")
    revisit_oidc_algorithms: str = "RS256,ES256"
    revisit_oidc_role_claim: str = "revisit_role"
    revisit_oidc_clinics_claim: str = "revisit_clinics"
    revisit_oidc_jwks_ttl_s: float = Field(default=600.0, ge=0, le=86400)
    # Clock skew tolerated between the issuer and this host on exp, nbf and iat.
    revisit_token_leeway_s: int = Field(default=60, ge=0, le=300)
    # A token whose exp - iat is longer than this is refused, whoever signed it.
    revisit_token_max_hours: float = Field(default=12.0, gt=0, le=24 * 31)
    # How stale the list of revoked tokens may be (seconds; 0 reads it on every request).
    revisit_token_revocation_cache_s: float = Field(default=5.0, ge=0, le=300)

    def oidc_algorithms(self) -> list[str]:
        return [a.strip() for a in self.revisit_oidc_algorithms.split(",") if a.strip()]


class TelemetrySettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    otel_exporter_otlp_endpoint: str = ""
    otel_service_namespace: str = "revisit"
    log_level: str = "INFO"
    # Keys the hash that stands for a patient_key in logs, traces and exemplars (shared.phi).
    revisit_pseudonym_key: str = Field(default="", description="HMAC key for pseudonyms")


class RetentionSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    # HIPAA keeps required documentation six years; the audit log defaults to that.
    revisit_audit_retention_days: int = Field(default=2190, ge=30, le=36_500)
    # Longer than any topic keeps its events (Kafka's default is 7 days), so a redelivery is
    # always still recognised.
    revisit_inbox_retention_days: int = Field(default=30, ge=1, le=3650)
    # Message words (sent and received) stay readable to staff this long, then are removed;
    # the rows (when, which channel, what happened) stay for the figures.
    revisit_message_body_retention_days: int = Field(default=365, ge=1, le=36_500)
    revisit_retention_sweep_seconds: float = Field(default=3600, ge=1, le=86_400)


class RevisitSettings(BaseSettings):
    """Everything one service process needs. Each env var is documented in README.md."""

    # Errors name the setting, never the values (secrets among them) it was built from.
    model_config = SettingsConfigDict(extra="ignore", hide_input_in_errors=True)

    revisit_profile: Literal["dev", "test", "production"] = "dev"
    # "controlled" keeps one shared "now" in Postgres that tests and the simulator advance.
    revisit_clock: Literal["system", "controlled"] = "system"
    revisit_host: str = "127.0.0.1"
    revisit_port: int | None = Field(default=None, ge=1, le=65535)
    revisit_relay_batch: int = Field(default=500, ge=1, le=500)
    revisit_timer_batch: int = Field(default=500, ge=1, le=5000)
    revisit_poll_interval_ms: int = Field(default=250, ge=10, le=60000)
    # A timer that fails this many times (deterministically) is parked for a person.
    revisit_timer_max_attempts: int = Field(default=8, ge=1, le=100)
    # Used for quiet hours until a patient's own time zone is known.
    revisit_default_time_zone: str = "America/New_York"
    revisit_metrics_token: str = Field(default="", description="bearer token for /metrics scrapes")
    # Larger request bodies are refused (413) before anything reads them; a service may raise
    # or lower it for named paths (ServiceSpec.body_limits).
    revisit_max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> RevisitSettings:
        if self.revisit_profile == "production":
            _production_identity(self.auth)
            if len(self.telemetry.revisit_pseudonym_key) < 32:
                raise ValueError("REVISIT_PSEUDONYM_KEY must be set (32+ characters) in production")
            if len(self.revisit_metrics_token) < 16:
                raise ValueError(
                    "REVISIT_METRICS_TOKEN must be set (16+ characters) in production: "
                    "/metrics answers only a scraper that presents it"
                )
            self.kafka.refuse_plaintext_in(self.revisit_profile)
        if not self.db.database_url:
            raise ValueError("DATABASE_URL is not set (revisit dev sets it for the embedded stack)")
        if not self.kafka.kafka_bootstrap_servers:
            raise ValueError(
                "KAFKA_BOOTSTRAP_SERVERS is not set (revisit dev sets it for the embedded broker)"
            )
        return self

    def port_for(self, service: str) -> int:
        return self.revisit_port or DEFAULT_PORTS[service]


def _production_identity(auth: AuthSettings) -> None:
    """Production takes staff tokens from the identity provider only, never HS256 ones."""
    if auth.revisit_jwt_secret:
        raise ValueError(
            "REVISIT_JWT_SECRET (HS256 staff tokens) is for the dev stack only: in production "
            "staff tokens come from the identity provider (REVISIT_OIDC_ISSUER); unset it"
        )
    if not (auth.revisit_oidc_issuer and auth.revisit_oidc_audience):
        raise ValueError("production needs REVISIT_OIDC_ISSUER and REVISIT_OIDC_AUDIENCE")
    if not auth.revisit_oidc_issuer.startswith("https://"):
        raise ValueError("REVISIT_OIDC_ISSUER must be an https:// URL in production")
    if auth.revisit_token_max_hours > 24:
        raise ValueError("REVISIT_TOKEN_MAX_HOURS may be at most 24 in production")


def load_settings() -> RevisitSettings:
    """Build settings from the environment (call from a composition root only)."""
    return RevisitSettings()
