"""Settings of the escalation service (``REVISIT_ESCALATION_*``), read in the composition root."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.escalation.domain.sla import MAX_ATTEMPTS, AckPolicy
from services.escalation.notifiers.config import HTTP_URL, NotifierConfig, NotifierKind
from shared.events.escalations import Severity
from shared.outbound import OutboundPolicy

# No clinic's notifier id may start with "@" (the API's pattern), so none can name this one.
FALLBACK_ID = "@deployment-fallback"


class EscalationSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REVISIT_ESCALATION_", extra="ignore", hide_input_in_errors=True
    )

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

    # The deployment's fallback notifier (services/escalation/fallback.py): in production,
    # pages of clinics not yet set up go here instead of the sandbox; required there. The URL is
    # the webhook's, or PagerDuty's Events API (empty: PagerDuty's own). The secret (webhook
    # signing secret or PagerDuty routing key) is the deployment's, in its own variable outside
    # every clinic's REVISIT_NOTIFIER_<CLINIC>__ namespace.
    fallback_notifier_kind: Literal["", "webhook", "pagerduty"] = ""
    fallback_notifier_url: str = Field(default="", max_length=500)
    fallback_notifier_secret: SecretStr = Field(default=SecretStr(""), max_length=500)

    @model_validator(mode="after")
    def _outbound_parses(self) -> EscalationSettings:
        try:
            self.outbound_policy()
        except ValueError as exc:
            raise ValueError(f"REVISIT_ESCALATION_OUTBOUND_ALLOW_NETWORKS: {exc}") from None
        return self

    @model_validator(mode="after")
    def _fallback_complete(self) -> EscalationSettings:
        url = self.fallback_notifier_url
        if url and not re.fullmatch(HTTP_URL, url):
            raise ValueError("REVISIT_ESCALATION_FALLBACK_NOTIFIER_URL: must be an http(s) URL")
        if not self.fallback_notifier_kind:
            return self
        if self.fallback_notifier_kind == "webhook" and not url:
            raise ValueError("REVISIT_ESCALATION_FALLBACK_NOTIFIER_URL: a webhook needs its URL")
        if not self.fallback_notifier_secret.get_secret_value():
            raise ValueError(
                "REVISIT_ESCALATION_FALLBACK_NOTIFIER_SECRET: the fallback notifier needs its "
                "secret (webhook signing secret or PagerDuty routing key)"
            )
        return self

    def fallback_notifier(self) -> NotifierConfig | None:
        """The deployment's fallback notifier, or None when none is configured."""
        if not self.fallback_notifier_kind:
            return None
        kind = NotifierKind(self.fallback_notifier_kind)
        url = self.fallback_notifier_url
        if kind is NotifierKind.webhook:
            settings = {"url": url}
        else:
            settings = {"events_url": url} if url else {}
        secret = self.fallback_notifier_secret.get_secret_value()
        return NotifierConfig(FALLBACK_ID, kind, settings, secret_value=secret)

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
