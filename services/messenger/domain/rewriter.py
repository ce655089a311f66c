"""Optional personalisation: a rewriter may only rephrase an approved, rendered message.

Off by default. Whatever a rewriter (a model, a person's tool) returns is accepted only if

- it passes the same linter as the approved template (no condition word, no urgency, no offer
  outside marketing, the opt-out line on a first contact, the length limit, no carrier keyword);
- it keeps every fact of the original: each variable's rendered value (name, practice, phone,
  provider, visit, month, link), every number, and every keyword the patient is told to reply.

Otherwise the approved text is sent, unchanged. ``accept`` is pure; calling the rewriter is the
shell's job (with a timeout, outside any transaction that matters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

from services.messenger.domain.linter import lint
from services.messenger.domain.templates import Template
from shared.events.common import Channel
from shared.events.outreach import Tone

_KEYWORDS = re.compile(r"\b[A-Z]{3,}\b")  # BOOK, STOP, CITA: words the patient is told to send
_NUMBERS = re.compile(r"\d+")


class Rewriter(Protocol):
    async def rephrase(self, text: str, *, language: str, tone: Tone, channel: Channel) -> str: ...


def facts_of(text: str, values: Iterable[str]) -> set[str]:
    facts = {v for v in values if v}
    facts |= set(_KEYWORDS.findall(text))
    facts |= set(_NUMBERS.findall(text))
    return facts


def keeps_every_fact(candidate: str, facts: Iterable[str]) -> bool:
    return all(fact in candidate for fact in facts)


def accept(
    template: Template,
    approved_text: str,
    candidate: str | None,
    values: Iterable[str],
    *,
    sms_max_chars: int = 320,
) -> tuple[str, bool]:
    """(text to send, whether the rewrite was used)."""
    if not candidate or candidate.strip() == approved_text.strip():
        return approved_text, False
    if "{" in candidate or "}" in candidate:
        return approved_text, False
    facts = facts_of(approved_text, values)
    if not keeps_every_fact(candidate, facts):
        return approved_text, False
    # The rendered text has no variables left, so the length rule judges it as it is.
    rewritten = replace(template, body=candidate)
    if lint(rewritten, sms_max_chars=sms_max_chars):
        return approved_text, False
    return candidate, True
