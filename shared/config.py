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

_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "dev", "password", "please-change"}


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL, e.g. postgresql+asyncpg://user:pw@host:5432/revisit",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_echo: bool = False


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

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


class AuthSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    revisit_jwt_secret: str = Field(default="", description="HMAC secret for staff JWTs")
    revisit_jwt_issuer: str = "revisit"
    revisit_jwt_audience: str = "revisit-ops"


class TelemetrySettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    otel_exporter_otlp_endpoint: str = ""
    otel_service_namespace: str = "revisit"
    log_level: str = "INFO"


class RevisitSettings(BaseSettings):
    """Everything one service process needs. Each env var is documented in README.md."""

    model_config = SettingsConfigDict(extra="ignore")

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

    db: DatabaseSettings = Field(default_factory=DatabaseSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> RevisitSettings:
        if self.revisit_profile == "production":
            if self.auth.revisit_jwt_secret.strip().lower() in _PLACEHOLDERS:
                raise ValueError("REVISIT_JWT_SECRET must be set to a real secret in production")
            if len(self.auth.revisit_jwt_secret) < 32:
                raise ValueError("REVISIT_JWT_SECRET must be at least 32 characters")
        if not self.db.database_url:
            raise ValueError("DATABASE_URL is not set (revisit dev sets it for the embedded stack)")
        if not self.kafka.kafka_bootstrap_servers:
            raise ValueError(
                "KAFKA_BOOTSTRAP_SERVERS is not set (revisit dev sets it for the embedded broker)"
            )
        return self

    def port_for(self, service: str) -> int:
        return self.revisit_port or DEFAULT_PORTS[service]


def load_settings() -> RevisitSettings:
    """Build settings from the environment (call from a composition root only)."""
    return RevisitSettings()
