"""Messenger settings (env vars prefixed ``REVISIT_MESSENGER_``), read in the composition root.

The sandbox provider and the sandbox scheduling adapter are the defaults, so the embedded
stack needs none of these. Real providers refuse to start without their credentials.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.messenger.links import valid_base


class MessengerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REVISIT_MESSENGER_", extra="ignore")

    # --- providers ---------------------------------------------------------------------------
    sms_provider: Literal["sandbox", "twilio"] = "sandbox"
    email_provider: Literal["sandbox", "smtp"] = "sandbox"

    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = Field(default="", description="E.164 sender number")
    twilio_messaging_service_sid: str = ""
    twilio_api_base: str = "https://api.twilio.com"
    # Twilio signs the URL it calls; behind a proxy that is not the URL the app sees.
    public_url: str = Field(default="", description="https://messenger.example.org")
    twilio_validate_signatures: bool = True

    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    smtp_use_tls: bool = False
    smtp_from: str = Field(default="", description="care@practice.example")
    smtp_timeout_s: float = Field(default=15.0, gt=0)
    email_inbound_secret: str = Field(default="", description="shared secret of the e-mail gateway")

    # --- sending -----------------------------------------------------------------------------
    sms_rate_per_second: float = Field(default=50.0, gt=0)
    email_rate_per_second: float = Field(default=50.0, gt=0)
    sandbox_rate_per_second: float = Field(default=100_000.0, gt=0)
    dispatch_batch: int = Field(default=500, ge=1, le=5000)
    provider_timeout_s: float = Field(default=10.0, gt=0)
    # A send still "in flight" this long after it started is reconciled with the provider.
    lease_seconds: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=50)
    # Quiet hours and caps are not settings here: each command carries its clinic's outreach
    # policy (configured in the sequencer), so there is one policy, not two.
    sms_max_chars: int = Field(default=320, ge=70, le=1600)
    # A step read before the patient's contact card (or a marketing step before any consent
    # record) waits this long for it, then is blocked with the reason (0: never wait).
    prerequisite_wait_seconds: float = Field(default=3600.0, ge=0, le=7 * 86400)
    sms_first_max_chars: int = Field(
        default=459, ge=70, le=1600, description="a first contact: reason, next step, opt-out"
    )

    # --- conversations -----------------------------------------------------------------------
    scheduling: Literal["sandbox", "fhir"] = "sandbox"
    fhir_base_url: str = ""
    fhir_token: str = ""
    # Per-clinic EHR connections (the messenger's /ehr API) replace the two above for a clinic.
    ehr_timeout_s: float = Field(default=10.0, gt=0, le=120)
    offer_valid_hours: int = Field(default=48, ge=1, le=720)
    # Freed slots: how many patients each batch offers the time to, how long a batch waits for
    # a "yes" before the next, and how near its start a freed time stops being offered.
    freed_slots: bool = True  # offer cancelled appointments' slots at all
    freed_slot_batch_size: int = Field(default=3, ge=1, le=20)
    freed_slot_batch_minutes: int = Field(default=30, ge=1, le=1440)
    freed_slot_lead_minutes: int = Field(default=120, ge=0, le=2880)
    snooze_default_days: int = Field(default=30, ge=1, le=365)
    # Where tracked booking links live: "<base>/<token>" answers a redirect to the practice's
    # booking page and records the click. Empty: messages carry the booking page itself.
    link_base_url: str = Field(default="", description="https://go.practice.example/b")
    emergency_number: str = "911"
    rewriter: Literal["none"] = "none"
    # A second reading of replies by an OpenAI-compatible chat endpoint: off unless a URL is
    # set. It may only add a red flag, clinical content or a revocation the local layers missed.
    reply_reader_url: str = Field(default="", description="https://llm.example.org (no /v1)")
    reply_reader_model: str = ""
    reply_reader_api_key: str = ""
    reply_reader_timeout_s: float = Field(default=3.0, gt=0, le=30)
    # A JSON file of each practice's own phrases (domain/phrases.py): read at start-up.
    reply_phrases: str = Field(default="", description="/etc/revisit/reply-phrases.json")

    @model_validator(mode="after")
    def _real_providers_need_credentials(self) -> MessengerSettings:
        if self.sms_provider == "twilio":
            if not (self.twilio_account_sid and self.twilio_auth_token):
                raise ValueError(
                    "twilio needs REVISIT_MESSENGER_TWILIO_ACCOUNT_SID and _AUTH_TOKEN"
                )
            if not (self.twilio_from or self.twilio_messaging_service_sid):
                raise ValueError("twilio needs _TWILIO_FROM or _TWILIO_MESSAGING_SERVICE_SID")
        if self.email_provider == "smtp" and not (self.smtp_host and self.smtp_from):
            raise ValueError("smtp needs REVISIT_MESSENGER_SMTP_HOST and _SMTP_FROM")
        if self.scheduling == "fhir" and not self.fhir_base_url:
            raise ValueError("fhir scheduling needs REVISIT_MESSENGER_FHIR_BASE_URL")
        if self.link_base_url:
            try:
                valid_base(self.link_base_url)
            except ValueError as exc:
                raise ValueError(f"REVISIT_MESSENGER_LINK_BASE_URL: {exc}") from None
        return self
