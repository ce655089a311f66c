"""What a step needs to have arrived before it can be judged, and how long it may wait for it.

The messenger learns a patient's contact card and consent from ``ehr.events`` and its commands
from ``outreach.commands``: two topics, two consumer groups, no order between them. A SendStep
read before the patient's PatientUpserted (a burst, a catch-up after an outage, an onboarding)
would otherwise be blocked as ``no_contact`` and its sequence stopped for good. So a step whose
prerequisites have not arrived waits, for a bounded time; only a patient whose card truly has no
usable contact, or whose prerequisites never arrive within the wait, is blocked.

"Not arrived" is judged from what only the EHR can tell: no demographics were ever applied to
the card (none, or one made by a consent record alone), or a marketing step for a patient whose
marketing consent was never recorded either way. A card with demographics but no address, a
recorded marketing denial, an opt-out: those are facts, and the normal checks block at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.messenger.domain.checks import ContactCard
from shared.events.common import Purpose
from shared.events.messages import BlockReason
from shared.events.outreach import SendStep


class Awaiting(StrEnum):
    contact = "contact"  # no PatientUpserted applied yet
    marketing_consent = "marketing_consent"  # a marketing step, consent never recorded


# When the wait ends without it: the reason the step is blocked with.
BLOCK_REASONS = {
    Awaiting.contact: BlockReason.no_contact,
    Awaiting.marketing_consent: BlockReason.no_consent,
}


@dataclass(frozen=True)
class Arrived:
    """What the EHR has told the messenger about one patient so far."""

    demographics: bool  # a PatientUpserted was applied to the card
    marketing_consent_recorded: bool  # a marketing grant or denial was recorded


def needs_lookup(card: ContactCard | None, cmd: SendStep) -> bool:
    """Whether ``Arrived`` must be read from the store: a card with an address has had its
    demographics applied (only a PatientUpserted writes addresses), so most steps never ask."""
    if card is None:
        return False
    if card.phone is None and card.email is None:
        return True
    return cmd.purpose is Purpose.marketing and not card.marketing(cmd.channel)


def awaiting(card: ContactCard | None, arrived: Arrived | None, cmd: SendStep) -> Awaiting | None:
    """What the step still waits for; None when it can be judged by the send-time checks."""
    if card is None:
        return Awaiting.contact
    has_address = card.phone is not None or card.email is not None
    if not has_address and (arrived is None or not arrived.demographics):
        return Awaiting.contact
    if (
        cmd.purpose is Purpose.marketing
        and not card.marketing(cmd.channel)
        and arrived is not None
        and not arrived.marketing_consent_recorded
    ):
        return Awaiting.marketing_consent
    return None


def give_up_at(held_at: datetime, wait: timedelta, expires_at: datetime) -> datetime:
    """The end of the wait: the bounded wait, or the step's own expiry if that comes first."""
    return min(held_at + wait, expires_at)


def why(what: Awaiting, wait: timedelta) -> str:
    """Staff-facing explanation (no patient data)."""
    minutes = round(wait.total_seconds() / 60)
    span = f"{minutes} min" if minutes >= 1 else f"{wait.total_seconds():g} s"
    if what is Awaiting.contact:
        return f"no contact card arrived from the EHR within {span} of the step"
    return f"no marketing consent was recorded by the EHR within {span} of the step"
