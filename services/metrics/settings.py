"""Settings of the metrics service (read in the composition root, never at import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from services.metrics.offsets import OffsetSampler


class MetricsSettings(BaseSettings):
    """``REVISIT_METRICS_*`` environment variables (documented in docs/metrics.md)."""

    model_config = SettingsConfigDict(env_prefix="REVISIT_METRICS_", extra="ignore")

    # A booking counts as a rebooking when it is made within this many days after the first
    # outreach message (or, in pilot comparisons, after assignment to an arm).
    attribution_days: int = Field(default=30, ge=1, le=365)
    # How often the background sampler reads consumer-group offsets and topic high-water marks.
    lag_interval_s: float = Field(default=15.0, ge=0.2, le=3600.0)
    # Off: no consumer lag or DLQ figures (e.g. a replica that should not talk to the admin API).
    lag_enabled: bool = True


@dataclass
class MetricsContext:
    """What the metrics service's routes and /metrics share (``runtime.context``)."""

    settings: MetricsSettings
    # Reads consumer lag and dead-letter counts in the background; None when lag is disabled.
    sampler: OffsetSampler | None = None
