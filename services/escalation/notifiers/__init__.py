"""Pagers behind one base class: PagerDuty, Slack, e-mail, a signed webhook and the sandbox."""

from services.escalation.notifiers.base import DeliveryResult, Notifier, PageNotice
from services.escalation.notifiers.config import (
    SANDBOX,
    NotifierConfig,
    NotifierFactory,
    NotifierKind,
    NotifierMisconfigured,
)

__all__ = [
    "SANDBOX",
    "DeliveryResult",
    "Notifier",
    "NotifierConfig",
    "NotifierFactory",
    "NotifierKind",
    "NotifierMisconfigured",
    "PageNotice",
]
