"""The messenger's pure core: no database, HTTP or broker imports anywhere in this package.

- ``checks``: send-time checks (consent, opt-out, quiet hours, caps ...).
- ``templates``, ``library``, ``reasons``, ``linter``, ``words``, ``system_messages``: the
  approved words, the facts they state, and the checks on the final text.
- ``keywords``, ``classifier``, ``dates``: what a reply means.
- ``conversation``: what to do about a reply (events, consent changes, answers).
- ``rewriter``: optional rephrasing that must keep every fact, or the approved text is sent.
"""

from services.messenger.domain.checks import (
    Blocked,
    ContactCard,
    SendContext,
    SendWindow,
    check_send,
    choose_channel,
)
from services.messenger.domain.templates import SERVICE_NAMES, Rendered, Template, render

__all__ = [
    "SERVICE_NAMES",
    "Blocked",
    "ContactCard",
    "Rendered",
    "SendContext",
    "SendWindow",
    "Template",
    "check_send",
    "choose_channel",
    "render",
]
