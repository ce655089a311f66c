"""Settings of the escalation service (``REVISIT_ESCALATION_*``), read in the composition root."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.escalation.domain.sla import MAX_ATTEMPTS, AckPolicy
from shared.events.escalations import Severity
from shared.outbound import OutboundPolicy


class EscalationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REVISIT_ESCALATION_", extra="ignore")

    # Minutes a page may wait for an acknowledgement before the next person is paged.
    ack_minutes_urgent: int = Field(default=5, ge=1, le=10080)
    ack_minutes_high: int = Field(default=15, ge=1, le=10080)
    ack_minutes_normal: int = Field(default=60, ge=1, le=10080)
    ack_minutes_low: int = Field(default=240, ge=1, le=10080)
    max_page_attempts: int = Field(default=MAX_ATTEMPTS, ge=1, le=MAX_ATTEMPTS)

    # Delivery to the pager providers. Back-off runs on wall time (it is about the provider's
    # network, not the clinic's day), so a frozen or fast test clock neither stalls nor floods it.
    delivery_max_tries: int = Field(default=8, ge=1, le=50)
    delivery_backoff_s: float = Field(default=2.0, gt=0, le=600)
    delivery_backoff_max_s: float = Field(default=300.0, gt=0, le=3600)
    delivery_timeout_s: float = Field(default=5.0, gt=0, le=60)
    dispatch_interval_ms: int = Field(default=250, ge=10, le=60000)
    dispatch_concurrency: int = Field(default=16, ge=1, le=256)

    # Where clinics' notifiers may connect (shared/outbound.py): private, loopback and
    # link-local addresses only inside these networks (CIDRs, comma-separated); when hosts are
    # listed, only those hosts (".example.org" takes its subdomains).
    outbound_allow_networks: str = Field(default="", max_length=2000)
    outbound_allow_hosts: str = Field(default="", max_length=2000)

    # Links in pages point here (e.g. https://revisit.example.org/escalation); empty: no link.
    public_url: str = Field(default="", max_length=300)

    @model_validator(mode="after")
    def _outbound_parses(self) -> EscalationSettings:
        try:
            self.outbound_policy()
        except ValueError as exc:
            raise ValueError(f"REVISIT_ESCALATION_OUTBOUND_ALLOW_NETWORKS: {exc}") from None
        return self

    def outbound_policy(self) -> OutboundPolicy:
        return OutboundPolicy.parse(self.outbound_allow_networks, self.outbound_allow_hosts)

    def ack_policy(self) -> AckPolicy:
        return AckPolicy(
            {
                Severity.urgent: self.ack_minutes_urgent,
                Severity.high: self.ack_minutes_high,
                Severity.normal: self.ack_minutes_normal,
                Severity.low: self.ack_minutes_low,
            },
            self.max_page_attempts,
        )
