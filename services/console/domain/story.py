"""A patient's whole story, from what the services' APIs already say: each sequence with why it
was started (the documented reason and the record it came from) and each step's words as sent,
the replies and what they were understood as, the consent ledger, the cases and the care
journey."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.console.domain.inbox import Reading, reading
from services.console.domain.words import SEGMENTS, say


@dataclass(frozen=True)
class StepView:
    step: int
    status: str
    channel: str | None
    scheduled_for: str | None
    sent_words: str | None  # the text exactly as it went out (None: nothing went out)
    sent_at: str | None
    delivery: str | None


@dataclass(frozen=True)
class SequenceView:
    sequence_id: str
    segment: str
    segment_label: str
    state: str
    stop_reason: str | None
    why: str  # the documented reason the sequence started with
    source: str | None  # "visit v-12 (VisitCompleted)": the record the need came from
    window: str | None
    steps: tuple[StepView, ...]
    started_at: str | None


@dataclass(frozen=True)
class Reply:
    at: str | None
    words: str
    reading: Reading
    author: str | None = None


@dataclass(frozen=True)
class Story:
    sequences: tuple[SequenceView, ...]
    replies: tuple[Reply, ...]
    segments: tuple[dict[str, Any], ...]
    paused_by_staff: bool
    opted_out: tuple[str, ...]
    other_messages: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)


def _source(need: Mapping[str, Any] | None) -> str | None:
    src = (need or {}).get("source")
    if not src:
        return None
    return f"{src.get('kind', 'record').replace('_', ' ')} {src.get('id', '')}".strip()


def _window(need: Mapping[str, Any] | None) -> str | None:
    window = (need or {}).get("window") or {}
    opens, closes = window.get("opens_on"), window.get("closes_on")
    if opens or closes:
        return f"{opens or '…'} to {closes or '…'}"
    return None


def _needs_by_eligibility(explain: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for segment in explain.get("segments", ()):
        for need in segment.get("needs", ()):
            if need.get("eligibility_id"):
                found[need["eligibility_id"]] = need
    return found


def build_story(
    outreach: Mapping[str, Any],
    conversation: Sequence[Mapping[str, Any]],
    explain: Mapping[str, Any],
) -> Story:
    needs = _needs_by_eligibility(explain)
    sent = {
        (m.get("sequence_id"), m.get("step")): m
        for m in conversation
        if m.get("direction") == "outbound" and m.get("step") is not None
    }
    sequences = []
    for seq in outreach.get("sequences", ()):
        need = needs.get(seq.get("eligibility_id") or "")
        steps = []
        for step in seq.get("steps", ()):
            message = sent.get((seq["sequence_id"], step["step"]))
            steps.append(
                StepView(
                    step=step["step"],
                    status=step.get("status", ""),
                    channel=step.get("channel"),
                    scheduled_for=step.get("scheduled_for"),
                    sent_words=message.get("body") if message else None,
                    sent_at=str(message["at"]) if message and message.get("at") else None,
                    delivery=message.get("status") if message else None,
                )
            )
        sequences.append(
            SequenceView(
                sequence_id=seq["sequence_id"],
                segment=seq.get("segment", ""),
                segment_label=say(SEGMENTS, seq.get("segment")),
                state=seq.get("state", ""),
                stop_reason=seq.get("stop_reason"),
                why=seq.get("reason") or (need or {}).get("reason") or "no reason recorded",
                source=_source(need),
                window=_window(need),
                steps=tuple(steps),
                started_at=seq.get("started_at"),
            )
        )
    replies = tuple(
        Reply(
            at=str(m["at"]) if m.get("at") else None,
            words=m.get("body") or "",
            reading=reading(
                {
                    "intent": m.get("intent"),
                    "barrier": m.get("barrier"),
                    "red_flags": m.get("red_flags"),
                }
            ),
        )
        for m in conversation
        if m.get("direction") == "inbound"
    )
    others = tuple(
        m for m in conversation if m.get("direction") == "outbound" and m.get("step") is None
    )
    segments = tuple(
        {
            "segment": s.get("segment"),
            "label": say(SEGMENTS, s.get("segment")),
            "status": s.get("status"),
            "why": list(s.get("why", ())),
            "sources": [src for src in (_source(n) for n in s.get("needs", ())) if src],
        }
        for s in explain.get("segments", ())
    )
    return Story(
        sequences=tuple(sequences),
        replies=replies,
        segments=segments,
        paused_by_staff=bool(outreach.get("paused_by_staff")),
        opted_out=tuple(outreach.get("opted_out") or ()),
        other_messages=others,
    )
