"""How a clinic's notifiers are configured, and how a configuration becomes a ``Notifier``.

A notifier configuration has plain settings (an endpoint URL, an SMTP host) and at most one
secret: the PagerDuty routing key, the Slack webhook URL, the webhook signing secret or the SMTP
password. The secret is given either as the NAME of an environment variable of the escalation
service (``secret_env``) or as a value stored in the database with the clinic's configuration
(``secret``). A stored value is write-only: the API answers ``secret_set: true`` and never
returns it, and it is never logged.

A ``secret_env`` must lie in the clinic's own namespace, ``REVISIT_NOTIFIER_<CLINIC>__<NAME>``
(``secret_env_prefix``): never another of Revisit's secrets, never another clinic's. The
namespace is the clinic id upper-cased with ``-`` as ``_``, defined only for ids of lower-case
letters, digits and single hyphens, which makes it one clinic's alone (no two such ids share it,
and none is a prefix of another's since ids have no ``__``); other clinics store their secret.

Every URL and host a notifier connects to passes the outbound allow-list
(``shared/outbound.py``) when it is saved and again before each delivery.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.escalation.domain.model import Action
from services.escalation.notifiers.base import Notifier
from services.escalation.notifiers.email import EmailNotifier
from services.escalation.notifiers.pagerduty import EVENTS_URL, PagerDutyNotifier
from services.escalation.notifiers.sandbox import SandboxNotifier
from services.escalation.notifiers.slack import SlackNotifier
from services.escalation.notifiers.webhook import WebhookNotifier
from shared.outbound import OutboundPolicy, OutboundRefused

SECRET_ENV_PATTERN = r"^REVISIT_NOTIFIER_[A-Z0-9_]{1,160}$"  # noqa: S105 - a name pattern
_NAMESPACED_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SECRET_NAME = re.compile(r"^[A-Z0-9][A-Z0-9_]{0,63}$")


def secret_env_prefix(clinic_id: str) -> str | None:
    """The clinic's own namespace of notifier secret variables (None: store the secret)."""
    if not _NAMESPACED_ID.fullmatch(clinic_id):
        return None
    return f"REVISIT_NOTIFIER_{clinic_id.upper().replace('-', '_')}__"


def secret_env_problem(clinic_id: str, name: str) -> str | None:
    """Why ``name`` is not one of the clinic's secret variables, or None when it is."""
    prefix = secret_env_prefix(clinic_id)
    if prefix is None:
        return "secret_env: this clinic id has no variable namespace; give secret instead"
    if not (name.startswith(prefix) and _SECRET_NAME.fullmatch(name[len(prefix) :])):
        return f"secret_env: must be {prefix}<NAME> (the clinic's own namespace)"
    return None


HTTP_URL = r"^https?://\S+$"


class NotifierKind(StrEnum):
    pagerduty = "pagerduty"
    slack = "slack"
    email = "email"
    webhook = "webhook"
    sandbox = "sandbox"


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PagerDutySettings(_Settings):
    events_url: str = Field(default=EVENTS_URL, pattern=HTTP_URL, max_length=500)


class SlackSettings(_Settings):
    pass  # the webhook URL is the secret


class EmailSettings(_Settings):
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=587, ge=1, le=65535)
    from_address: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    to: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    username: str | None = Field(default=None, max_length=255)
    use_tls: bool = False
    start_tls: bool | None = None  # None: upgrade when the server offers STARTTLS


class WebhookSettings(_Settings):
    url: str = Field(pattern=HTTP_URL, max_length=500)


class SandboxSettings(_Settings):
    pass


SETTINGS: Mapping[NotifierKind, type[_Settings]] = {
    NotifierKind.pagerduty: PagerDutySettings,
    NotifierKind.slack: SlackSettings,
    NotifierKind.email: EmailSettings,
    NotifierKind.webhook: WebhookSettings,
    NotifierKind.sandbox: SandboxSettings,
}
NEEDS_SECRET = frozenset({NotifierKind.pagerduty, NotifierKind.slack, NotifierKind.webhook})
ACTIONS: Mapping[str, frozenset[Action]] = {
    NotifierKind.pagerduty: PagerDutyNotifier.actions,
    NotifierKind.slack: SlackNotifier.actions,
    NotifierKind.email: EmailNotifier.actions,
    NotifierKind.webhook: WebhookNotifier.actions,
    NotifierKind.sandbox: SandboxNotifier.actions,
}


async def check_destination(
    policy: OutboundPolicy, kind: NotifierKind, settings: _Settings, secret: str | None
) -> None:
    """OutboundRefused unless everything this notifier would connect to is allowed."""
    if isinstance(settings, PagerDutySettings):
        await policy.check_url(settings.events_url)
    elif isinstance(settings, WebhookSettings):
        await policy.check_url(settings.url)
    elif isinstance(settings, EmailSettings):
        await policy.check_host(settings.host, settings.port)
    elif kind is NotifierKind.slack and secret:
        await policy.check_url(secret)  # the webhook URL is Slack's secret


class NotifierMisconfigured(Exception):
    """The configuration cannot make a notifier (the message names no secret and no URL)."""


@dataclass(frozen=True)
class NotifierConfig:
    notifier_id: str
    kind: NotifierKind
    settings: Mapping[str, Any] = field(default_factory=dict)
    secret_env: str | None = None
    secret_value: str | None = field(default=None, repr=False)

    def secret(self, env: Mapping[str, str]) -> str | None:
        if self.secret_env:
            return env.get(self.secret_env) or None
        return self.secret_value or None


SANDBOX = NotifierConfig("sandbox", NotifierKind.sandbox)


class NotifierFactory:
    """Builds notifiers from stored configurations (once per delivery, so a fix applies at once)."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        env: Mapping[str, str],
        timeout: float,
        policy: OutboundPolicy,
    ) -> None:
        # httpx logs every request's full URL at INFO, and a Slack webhook URL is a credential.
        logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").level))
        self._http = http
        self._sessions = sessions
        self._env = env
        self._timeout = timeout
        self._policy = policy

    async def build(self, config: NotifierConfig, clinic_id: str) -> Notifier:
        """The clinic's notifier, after its secret's namespace and its destination are checked."""
        kind = config.kind
        settings = SETTINGS[kind].model_validate(dict(config.settings))
        if config.secret_env and (problem := secret_env_problem(clinic_id, config.secret_env)):
            raise NotifierMisconfigured(problem)
        secret = config.secret(self._env)
        if kind in NEEDS_SECRET and not secret:
            where = f"environment variable {config.secret_env}" if config.secret_env else "secret"
            raise NotifierMisconfigured(f"{kind} notifier has no {where} set")
        try:
            await check_destination(self._policy, kind, settings, secret)
        except OutboundRefused as exc:
            raise NotifierMisconfigured(f"{kind} notifier: {exc}") from None
        if isinstance(settings, PagerDutySettings):
            assert secret is not None
            return PagerDutyNotifier(
                self._http, secret, events_url=settings.events_url, timeout=self._timeout
            )
        if isinstance(settings, SlackSettings) and kind is NotifierKind.slack:
            assert secret is not None
            return SlackNotifier(self._http, secret, timeout=self._timeout)
        if isinstance(settings, WebhookSettings):
            assert secret is not None
            return WebhookNotifier(self._http, settings.url, secret, timeout=self._timeout)
        if isinstance(settings, EmailSettings):
            return EmailNotifier(
                host=settings.host,
                port=settings.port,
                sender=settings.from_address,
                default_recipient=settings.to,
                username=settings.username,
                password=secret,
                use_tls=settings.use_tls,
                start_tls=settings.start_tls,
                timeout=self._timeout,
            )
        return SandboxNotifier(self._sessions)
