"""Who is offered a freed slot, in what order, and on which channel.

When an appointment is cancelled its time can go to a patient who needs it. The list is short
and ranked: first the patients on the practice's waitlist for that service (they asked for an
earlier time; first come, first offered), then the patients already in a segment for that
service line, the most overdue due date first. Offers go out in small batches that share one
offer id; the first patient to accept gets the slot.

Nobody is offered who may not be messaged now: the same checks and the same outreach policy as
every step (``shared.outreach_policy``): an opt-out on the channel, no marketing consent for a
cosmetic service, quiet hours in the patient's zone, the frequency caps, a deceased or inactive
patient, a number reported as wrong, an open case with a person. The patient who cancelled is
never offered their own slot back, no patient is offered the same slot twice, and a patient
holding other times just offered (a booking by text under way) is not interrupted.

Pure: no clock, no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from services.messenger.domain.checks import ContactCard
from shared.events.common import Channel, Purpose, ServiceLine
from shared.outreach_policy import OutreachPolicy, consent_refusal, send_refusal

OFFER_NAMESPACE = uuid.UUID("6a0f3c2e-5b1d-4e7a-9c84-2d7e1f0b3a95")
DEFAULT_BATCH = 3


def offer_id_for(clinic_id: str, appointment_id: str) -> str:
    """One offer id per freed appointment: every batch of its offers shares it."""
    return str(uuid.uuid5(OFFER_NAMESPACE, f"{clinic_id}:{appointment_id}"))


class Source(StrEnum):
    waitlist = "waitlist"  # the patient asked for an earlier time
    segment = "segment"  # the patient is in a segment for this service line


@dataclass(frozen=True)
class FreedSlot:
    offer_id: str
    clinic_id: str
    slot_id: str
    start: datetime
    service_line: ServiceLine
    provider_id: str | None
    location_id: str | None
    freed_by: str | None = None  # the patient who cancelled


@dataclass(frozen=True)
class Candidate:
    """A patient who might take the slot, with what the checks need."""

    patient_key: str
    source: Source
    card: ContactCard | None
    since: datetime | None = None  # waitlist: when they asked
    due_on: date | None = None  # segment: the documented due date
    marketing: bool = False  # the segment needs marketing consent
    recent_sends: tuple[datetime, ...] = ()
    escalation_open: bool = False
    offer_open: bool = False  # holding other times just offered: their choice is not cut short


@dataclass(frozen=True)
class Pick:
    patient_key: str
    channel: Channel
    source: Source
    purpose: Purpose = Purpose.care  # marketing needs the consent the dispatcher checks again


class SkipReason(StrEnum):
    already_offered = "already_offered"
    freed_it = "freed_it"
    no_contact = "no_contact"
    deceased = "deceased"
    patient_inactive = "patient_inactive"
    wrong_number = "wrong_number"
    opted_out = "opted_out"
    no_consent = "no_consent"
    escalation_open = "escalation_open"
    offer_open = "offer_open"
    quiet_hours = "quiet_hours"
    frequency_cap = "frequency_cap"


def purpose_of(slot: FreedSlot, candidate: Candidate) -> Purpose:
    """A cosmetic service (or a segment that needs it) needs marketing consent to be offered."""
    if slot.service_line.is_cosmetic or candidate.marketing:
        return Purpose.marketing
    return Purpose.care


def order(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Waitlist first (longest waiting first), then segment members (earliest due date first;
    none last); one place per patient, the better one."""

    def key(c: Candidate) -> tuple[int, float, str]:
        if c.source is Source.waitlist:
            when = c.since.timestamp() if c.since else 0.0
            return (0, when, c.patient_key)
        due = c.due_on.toordinal() if c.due_on else date.max.toordinal()
        return (1, float(due), c.patient_key)

    best: dict[str, Candidate] = {}
    for c in sorted(candidates, key=key):
        best.setdefault(c.patient_key, c)
    return list(best.values())


def refusal(
    slot: FreedSlot,
    c: Candidate,
    *,
    policy: OutreachPolicy,
    now: datetime,
) -> tuple[Channel | None, SkipReason | None]:
    """The channel to offer on, or why this patient may not be offered now."""
    card = c.card
    if slot.freed_by is not None and c.patient_key == slot.freed_by:
        return None, SkipReason.freed_it
    if card is None:
        return None, SkipReason.no_contact
    if card.deceased:
        return None, SkipReason.deceased
    if not card.active:
        return None, SkipReason.patient_inactive
    if c.escalation_open:
        return None, SkipReason.escalation_open
    if c.offer_open:
        return None, SkipReason.offer_open
    purpose = purpose_of(slot, c)
    opted_out = {ch for ch in Channel if card.opted_out(ch)}
    consent = {ch for ch in Channel if card.marketing(ch)}
    first: SkipReason | None = None
    for channel in (Channel.sms, Channel.email):
        address = card.address(channel)
        if not address:
            first = first or SkipReason.no_contact
            continue
        if channel is Channel.sms and card.wrong_number_phone == address:
            first = first or SkipReason.wrong_number
            continue
        refused = consent_refusal(purpose, channel, opted_out=opted_out, marketing_consent=consent)
        if refused is not None:
            # An opt-out anywhere outranks a missing address: it is the reason a person reads.
            reason = SkipReason(refused.value)
            first = reason if first in (None, SkipReason.no_contact) else first
            continue
        zones = [ZoneInfo(card.time_zone or policy.zone)]
        held = send_refusal(
            policy, now, zones=zones, states=(card.home_state,), sends=c.recent_sends
        )
        if held is not None:
            return None, SkipReason(held.hold.value)
        return channel, None
    return None, first or SkipReason.no_contact


def rank(
    slot: FreedSlot,
    candidates: Sequence[Candidate],
    *,
    policy: OutreachPolicy,
    now: datetime,
    batch_size: int = DEFAULT_BATCH,
    already_offered: frozenset[str] = frozenset(),
) -> tuple[list[Pick], dict[str, SkipReason]]:
    """The next batch of offers (at most ``batch_size``), and why each passed-over patient was
    passed over. Nothing is offered for a time that has already begun."""
    picks: list[Pick] = []
    skipped: dict[str, SkipReason] = {}
    if slot.start <= now or batch_size <= 0:
        return picks, skipped
    for c in order(candidates):
        if len(picks) >= batch_size:
            break
        if c.patient_key in already_offered:
            skipped[c.patient_key] = SkipReason.already_offered
            continue
        channel, reason = refusal(slot, c, policy=policy, now=now)
        if channel is None:
            assert reason is not None
            skipped[c.patient_key] = reason
            continue
        picks.append(Pick(c.patient_key, channel, c.source, purpose_of(slot, c)))
    return picks, skipped
