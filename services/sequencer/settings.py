"""Settings of the sequencer process (read in the composition root, never at import).

Each is the default for every clinic; a clinic's own rules (``PUT /clinics/{id}/rules``)
override them, and the clinic's state's allowed hours narrow them (docs/sequencer.md).
"""

from __future__ import annotations

from datetime import time

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.sequencer.domain.rules import AllowedHours, Rules


class SequencerSettings(BaseSettings):
    """``REVISIT_SEQUENCER_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="REVISIT_SEQUENCER_", extra="ignore")

    allowed_from: time = Field(time(8, 0), description="Local time outreach may start.")
    allowed_until: time = Field(time(21, 0), description="Local time outreach must stop.")
    per_day: int = Field(1, ge=0, le=10, description="Messages per patient in any 24 hours.")
    per_week: int = Field(3, ge=0, le=30, description="Messages per patient in any 7 days.")
    rest_days: int = Field(30, ge=0, le=365, description="Rest after a sequence runs out.")
    decline_rest_days: int = Field(
        180, ge=0, le=730, description="Rest after 'no' or 'no longer needed'."
    )
    snooze_default_days: int = Field(30, ge=1, le=180, description="'Later' with no date.")
    snooze_max_days: int = Field(90, ge=1, le=365, description="The longest snooze honoured.")
    concern_hold_hours: int = Field(48, ge=0, le=720, description="Hold after a question.")
    booking_hold_days: int = Field(7, ge=0, le=60, description="Hold while a booking confirms.")
    close_after_hours: int = Field(72, ge=1, le=720, description="Replies window after step 4.")
    step_lifetime_hours: int = Field(24, ge=1, le=168, description="SendStep.expires_at.")
    recovery_head_start_hours: int = Field(
        48, ge=0, le=720, description="Service recovery: time a person has to call first."
    )
    undeliverable_after: int = Field(2, ge=1, le=10, description="Permanent failures that stop.")
    messenger_url: str = Field(
        "",
        description="The messenger's API, whose words the previews show (default: this host's "
        "messenger port).",
    )
    timer_workers: int = Field(
        2,
        ge=1,
        le=8,
        description="Timer pollers in this process: while one batch waits on Postgres, the "
        "next is decided (they share the due timers through FOR UPDATE SKIP LOCKED).",
    )

    @model_validator(mode="after")
    def _hours_in_order(self) -> SequencerSettings:
        if not self.allowed_from < self.allowed_until:
            raise ValueError("allowed_from must be before allowed_until")
        return self

    def rules(self, default_zone: str) -> Rules:
        return Rules(
            zone=default_zone,
            hours=AllowedHours(self.allowed_from, self.allowed_until),
            per_day=self.per_day,
            per_week=self.per_week,
            rest_days=self.rest_days,
            decline_rest_days=self.decline_rest_days,
            snooze_default_days=self.snooze_default_days,
            snooze_max_days=self.snooze_max_days,
            concern_hold_hours=self.concern_hold_hours,
            booking_hold_days=self.booking_hold_days,
            close_after_hours=self.close_after_hours,
            step_lifetime_hours=self.step_lifetime_hours,
            recovery_head_start_hours=self.recovery_head_start_hours,
            undeliverable_after=self.undeliverable_after,
        )
