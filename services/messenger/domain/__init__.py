"""The messenger's pure core: no database, HTTP or broker imports anywhere in this package.

- ``checks``: send-time checks (consent, opt-out, quiet hours, caps ...).
- ``templates``, ``library``, ``linter``, ``system_messages``: the approved words.
- ``keywords``, ``classifier``, ``dates``: what a reply means.
- ``conversation``: what to do about a reply (events, consent changes, answers).
- ``rewriter``: optional rephrasing that must keep every fact, or the approved text is sent.
"""

from services.messenger.domain.checks import (
    Blocked,
    Caps,
    ContactCard,
    SendContext,
    check_send,
    choose_channel,
    quiet_hours_end,
)
from services.messenger.domain.templates import SERVICE_NAMES, Rendered, Template, render

__all__ = [
    "SERVICE_NAMES",
    "Blocked",
    "Caps",
    "ContactCard",
    "Rendered",
    "SendContext",
    "Template",
    "check_send",
    "choose_channel",
    "quiet_hours_end",
    "render",
]
