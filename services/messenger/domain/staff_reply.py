"""The staff inbox's rules: which replies need a person, and whether a reply that staff wrote
may go to the patient now.

A staff reply answers the patient, so it is not an outreach step: no frequency cap counts it and
an open escalation does not hold it (it is often what answers the case). Everything that protects
the patient still applies, through the same send-time checks as every other message: a usable
contact, alive and active, not a number the household said is wrong, never after an opt-out on
that channel, never in the patient's quiet hours. A text never names a diagnosis or condition,
whoever wrote it: staff call the patient for that.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime

from services.messenger.domain.checks import ContactCard, SendWindow, recheck
from services.messenger.domain.linter import CONDITION_WORDS, fold
from shared.events.common import Channel, Purpose

# The classifier's labels for a reply a person must read: it could not tell, the patient asked
# something, or the words may be clinical. A named barrier (cost, timing...) needs a person too.
NEEDS_A_PERSON = ("unknown", "question", "clinical_concern", "red_flag")
MAX_CHARS = 1600  # the longest SMS a provider accepts (10 segments)
STAFF_REPLY_NAMESPACE = uuid.UUID("5f0c7d1e-2b8a-4e63-9d4f-a1c3e8b7f602")

_WHY = {
    "no_contact": "the patient has no address on this channel",
    "deceased": "the patient's record says deceased",
    "patient_inactive": "the patient's record is inactive",
    "wrong_number": "this number was reported as not the patient's",
    "opted_out": "the patient opted out of messages on this channel; call them instead",
    "quiet_hours": "it is quiet hours where the patient lives; send it after",
    "no_consent": "the patient has not consented to these messages",
    "expired": "too late to send",
    "escalation_open": "an escalation holds messages to this patient",
    "template_not_approved": "no approved words",
    "frequency_cap": "too many messages lately",
}


@dataclass(frozen=True)
class Refusal:
    """Why a staff reply was not sent; ``message`` is written for staff and carries no PHI."""

    reason: str
    message: str
    retry_after: datetime | None = None


def needs_a_person(intent: str | None, barrier: str | None) -> bool:
    return intent in NEEDS_A_PERSON or barrier is not None


def staff_reply_id(patient_key: str, reply_key: str) -> str:
    """One message per reply form: a second submit of the same form is the same message."""
    return str(uuid.uuid5(STAFF_REPLY_NAMESPACE, f"{patient_key}:{reply_key}"))


def check_staff_reply(
    card: ContactCard | None,
    body: str,
    channel: Channel,
    now: datetime,
    window: SendWindow,
) -> Refusal | None:
    """None when the reply may be queued now; else the first reason it may not."""
    text = body.strip()
    if not text:
        return Refusal("empty", "write a reply first")
    if len(text) > MAX_CHARS:
        return Refusal("too_long", f"a reply holds at most {MAX_CHARS} characters")
    if CONDITION_WORDS.search(fold(text)):
        return Refusal(
            "condition_word",
            "a message must not name a diagnosis or condition; call the patient for that",
        )
    blocked = recheck(
        card,
        channel=channel,
        purpose=Purpose.care,
        expires_at=None,
        now=now,
        window=window,
        escalation_open=False,
    )
    if blocked is None:
        return None
    reason = blocked.reason.value
    return Refusal(reason, _WHY.get(reason, reason.replace("_", " ")), blocked.retry_after)


def confidence_of(body: str, recorded: str | None) -> float | None:
    """How sure the classifier is of the recorded reading, read again from the words.

    The figure is not stored when a reply arrives; when today's reading differs from the
    recorded one (the rules changed since), there is no honest figure to show: None.
    """
    label, confidence = _read_again(body)
    return confidence if label == recorded else None


@functools.lru_cache(maxsize=4096)
def _read_again(body: str) -> tuple[str, float]:
    # The inbox is read over and over while the same replies wait: each is classified once.
    from services.messenger.domain.classifier import classify

    understood = classify(body)
    return understood.label, understood.confidence
