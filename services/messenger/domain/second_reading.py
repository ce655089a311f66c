"""A second reading by an outside model (an OpenAI-compatible chat endpoint), off by default.

It reads the same reply after the local layers have acted, and may only ADD to what they
decided: a red flag or clinical content they missed (a person is paged or asked), a revocation
they missed (the patient is opted out and the sequence ends). It can never lower the safety or
consent decision: its reading is merged with the local ones by ``understanding.merge``, and
only what the merge adds is acted on. Its intent is kept as a suggestion for the person who
reads the reply; the automatic path does not act on it.

This module is pure: the request body to send, and the reading in the answer. Calling the
endpoint (with a timeout; a failure leaves the local reading as it stands) is the shell's job.
The reply's words go to that endpoint: a practice turns this on only with a provider it may
share patients' messages with.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from services.messenger.domain.red_flags import RedFlag, Safety
from services.messenger.domain.understanding import Reading, Understanding, merge
from shared.events.messages import Barrier, ReplyIntent

INSTRUCTIONS = """You read one patient's reply to a dermatology practice's text message.
Answer with one JSON object and nothing else:
{"consent": "revoke" | "opt_in" | "help" | "none",
 "safety": "red_flag" | "clinical" | "none",
 "intent": "book" | "choose_slot" | "later" | "decline" | "no_longer_needed" | "question" |
           "wrong_number" | "none",
 "barrier": "timing" | "cost" | "uncertainty" | "unresolved_concern" | "poor_experience" | "none",
 "confidence": a number from 0 to 1}
consent "revoke": any reasonable way of asking to stop receiving messages, anywhere in the reply.
safety "red_flag": something a clinician may need to act on soon (bleeding that will not stop,
a wound that opened, infection, severe or worsening pain, swelling of face, lips, eyes or throat,
trouble breathing, hives, vision changes or drooping after injections, skin turning white or
blue after filler, burns or blisters after a laser, low mood or self-harm thoughts on
isotretinoin, a new or changing mole, fainting, chest pain, an emergency). Negated or resolved
symptoms are "clinical". Several labels may apply to one reply; report each."""


class Reader(Protocol):
    """An outside reader: the reading of one reply and the intent it suggests, or None."""

    async def read(
        self, text: str, *, offered_slots: int, opted_out: bool
    ) -> tuple[Reading, ReplyIntent | None] | None: ...

    async def close(self) -> None: ...


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def request_body(text: str, *, model: str, offered_slots: int, opted_out: bool) -> dict[str, Any]:
    context = (
        f"The message they answer offered {offered_slots} numbered times. " if offered_slots else ""
    ) + ("They had opted out of messages before this reply. " if opted_out else "")
    return {
        "model": model,
        "temperature": 0,
        "response_format": {"type": "json_object"},
        "messages": [
            {"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": f"{context}Reply: {text}"},
        ],
    }


def reading_from(answer: dict[str, Any]) -> tuple[Reading, ReplyIntent | None] | None:
    """The reading in a chat-completions answer (None when there is none to trust), and the
    intent it suggests."""
    try:
        content = answer["choices"][0]["message"]["content"]
        found = json.loads(_FENCE.sub("", str(content).strip()))
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if not isinstance(found, dict):
        return None
    consent = found.get("consent", "none")
    safety = {"red_flag": Safety.red_flag, "clinical": Safety.clinical}.get(
        str(found.get("safety")), Safety.none
    )
    intent_name = str(found.get("intent", "none"))
    intent = (
        ReplyIntent(intent_name)
        if intent_name in {i.value for i in ReplyIntent} - {"red_flag", "clinical_concern"}
        else None
    )
    barrier_name = str(found.get("barrier", "none"))
    barrier = Barrier(barrier_name) if barrier_name in {b.value for b in Barrier} else None
    reading = Reading(
        "reader",
        revoke=consent == "revoke",
        opt_in=consent == "opt_in",
        help=consent == "help",
        safety=safety,
        red_flags=frozenset({RedFlag.other}) if safety is Safety.red_flag else frozenset(),
        barrier=barrier,
    )
    return reading, intent


def added(first: Understanding, reading: Reading) -> Understanding | None:
    """What the outside reading adds to the first one (None: nothing): a higher safety level,
    or a revocation. Only those are acted on; the rest is a suggestion."""
    merged = merge([first.reading, reading])
    more_safety = merged.safety > first.safety
    more_consent = merged.revoke and not first.revocation
    if not (more_safety or more_consent):
        return None
    delta = Reading(
        "reader",
        revoke=more_consent,
        safety=merged.safety if more_safety else Safety.none,
        red_flags=merged.red_flags - first.red_flags if more_safety else frozenset(),
    )
    return Understanding(merge([delta]), sure=False)
