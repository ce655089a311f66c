"""The shared inbox as staff read it: the patient's words, what the system understood and how
sure it was, how long they have waited, who has it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.console.domain.queue import instant
from services.console.domain.words import BARRIERS, INTENTS, say


@dataclass(frozen=True)
class Reading:
    """What the messenger understood of one reply."""

    intent: str
    barrier: str | None
    red_flags: tuple[str, ...]
    confidence: float | None

    @property
    def sureness(self) -> str:
        """The confidence in words; staff read words faster than decimals."""
        if self.confidence is None:
            return "confidence not recorded"
        if self.confidence >= 0.85:
            return f"sure ({self.confidence:.0%})"
        if self.confidence >= 0.6:
            return f"fairly sure ({self.confidence:.0%})"
        return f"unsure ({self.confidence:.0%})"

    @property
    def label(self) -> str:
        words = say(INTENTS, self.intent, "Not read")
        if self.barrier:
            words += f" · barrier: {say(BARRIERS, self.barrier).lower()}"
        return words


def reading(raw: Mapping[str, Any] | None) -> Reading:
    raw = raw or {}
    confidence = raw.get("confidence")
    return Reading(
        intent=raw.get("intent") or "unknown",
        barrier=raw.get("barrier"),
        red_flags=tuple(raw.get("red_flags") or ()),
        confidence=float(confidence) if confidence is not None else None,
    )


@dataclass(frozen=True)
class InboxItem:
    patient_key: str
    words: str
    reading: Reading
    received_at: datetime | None
    waiting_since: datetime | None
    waiting_replies: int
    red_flag: bool
    assigned_to: str | None


def inbox_items(rows: Iterable[Mapping[str, Any]]) -> list[InboxItem]:
    """Red flags first, then whoever has waited longest."""
    items = [
        InboxItem(
            patient_key=r["patient_key"],
            words=r.get("words") or "",
            reading=reading(r.get("reading")),
            received_at=instant(r.get("received_at")),
            waiting_since=instant(r.get("waiting_since")),
            waiting_replies=int(r.get("waiting_replies") or 0),
            red_flag=bool(r.get("red_flag")),
            assigned_to=r.get("assigned_to"),
        )
        for r in rows
    ]
    return sorted(items, key=lambda i: (not i.red_flag, i.waiting_since or datetime.max))


def refusal_words(detail: Any) -> str:
    """A service's refusal of a staff reply, in a sentence (it carries no PHI by design)."""
    if isinstance(detail, Mapping):
        message = str(detail.get("message") or detail.get("reason") or "refused")
        retry = instant(detail.get("retry_after"))
        if retry is not None:
            message += f" (from {retry:%Y-%m-%d %H:%M} UTC)"
        return message
    return str(detail)
