"""The deployment's fallback notifier: where, in production, a page goes that would otherwise
reach only the sandbox notifier (which only writes a row).

A clinic Revisit first sees through a case gets the defaults of ``domain/defaults.py``, whose
rotations page the sandbox until an admin puts a real notifier on them. In production such a
clinic's pages (and an urgent or high page of any clinic that would reach only the sandbox) go
to this notifier instead, configured by the operator with ``REVISIT_ESCALATION_FALLBACK_*``
(a webhook or PagerDuty), never through the API. The case is recorded as usual; the clinic's
settings say ``set_up: false``, a warning is logged (ids only) and
``revisit_escalation_fallback_pages_total`` counts it, so staff see the clinic needs set-up.
Outside production the sandbox stays, as in the dev stack.

The fallback's secret is the deployment's, not a clinic's: it is read from its own variable,
``REVISIT_ESCALATION_FALLBACK_NOTIFIER_SECRET``, outside every clinic's namespace
(``REVISIT_NOTIFIER_<CLINIC>__``), so no clinic's ``secret_env`` can name it, and its id starts
with ``@``, which no clinic's notifier id may, so no clinic can route to it on purpose.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from services.escalation.domain import Case
from services.escalation.notifiers import NotifierConfig, NotifierKind
from services.escalation.notifiers.config import SETTINGS, check_destination
from services.escalation.repository import notifiers
from services.escalation.settings import FALLBACK_ID, EscalationSettings
from shared.events.escalations import CaseType, Severity
from shared.outbound import OutboundRefused
from shared.runtime import Runtime

log = logging.getLogger(__name__)

FALLBACK_PAGES = Counter(
    "revisit_escalation_fallback_pages_total",
    "Pages sent to the deployment's fallback notifier instead of only the sandbox",
    ["service", "reason"],
)
_AT_ONCE = frozenset({Severity.urgent, Severity.high})

__all__ = ["FALLBACK_ID", "FallbackMissing", "check_fallback", "fallback_for", "instead_of_sandbox"]


class FallbackMissing(Exception):
    """Production without a usable fallback notifier (the message names the setting)."""


def fallback_for(runtime: Runtime, config: EscalationSettings) -> NotifierConfig | None:
    """The fallback in production; None elsewhere (the sandbox stays)."""
    if runtime.settings.revisit_profile != "production":
        return None
    return config.fallback_notifier()


async def check_fallback(runtime: Runtime, config: EscalationSettings) -> None:
    """In production, refuse to start without a fallback notifier whose destination passes the
    outbound allow-list; elsewhere nothing."""
    if runtime.settings.revisit_profile != "production":
        return
    fallback = config.fallback_notifier()
    if fallback is None:
        raise FallbackMissing(
            "REVISIT_ESCALATION_FALLBACK_NOTIFIER_KIND must be set in production (webhook or "
            "pagerduty, with REVISIT_ESCALATION_FALLBACK_NOTIFIER_SECRET): pages of clinics not "
            "yet set up go there instead of the sandbox's table"
        )
    kind = fallback.kind
    settings = SETTINGS[kind].model_validate(dict(fallback.settings))
    secret = fallback.secret({})
    try:
        await check_destination(config.outbound_policy(), kind, settings, secret)
    except OutboundRefused as exc:
        raise FallbackMissing(f"REVISIT_ESCALATION_FALLBACK_NOTIFIER_URL: {exc}") from None


async def instead_of_sandbox(
    session: AsyncSession,
    fallback: NotifierConfig | None,
    case: Case,
    configs: list[NotifierConfig],
) -> list[NotifierConfig]:
    """The fallback in place of a page that would reach only the sandbox, when the clinic is
    not set up (no real notifier) or the case cannot wait (urgent, high, a red flag)."""
    if fallback is None or any(c.kind is not NotifierKind.sandbox for c in configs):
        return configs
    if not await notifiers.has_real(session, case.clinic_id):
        reason = "clinic_not_set_up"
    elif case.severity in _AT_ONCE or case.case_type is CaseType.red_flag:
        reason = "urgent_route_at_sandbox"
    else:
        return configs
    FALLBACK_PAGES.labels("escalation", reason).inc()
    log.warning(
        "page sent to the deployment fallback notifier",
        extra={
            "clinic_id": case.clinic_id,
            "escalation_id": case.escalation_id,
            "reason": reason,
        },
    )
    return [fallback]
